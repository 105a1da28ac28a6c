"""A real vLLM (CPU build, .venv-vllm) serves adapters the service trained, through the plugin.

One loraplane server and worker train three adapters of the demo model (two versions of
`chat` with the default targets, lm_head included, and `attn` with attention only); one vLLM
OpenAI-compatible server with the loraplane plugin (`--enable-lora --max-lora-rank 16
--middleware loraplane_vllm.AliasRefresh`) is started once for the module and answers by
reference. Every answer is compared with peft's greedy tokens, computed here in the project's
venv from the same files.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import torch
from loraplane_client import connect, download_adapter, import_adapter
from peft import LoraConfig, get_peft_model
from transformers import AutoTokenizer

from tests.live import LiveServer, LiveWorker, wait_for_job
from tests.serving.reference import load_base, peft_greedy
from tests.serving.vllm_server import VllmServer, require_vllm_venv
from tests.specs import BASE_MODEL, tiny_spec

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.timeout(900)]

SERVER_ENV = {"LORAPLANE_QUEUE_POLL_SECONDS": "0.1"}
MAX_LORA_RANK = 16
NEW_TOKENS = 8
PROMPTS = ["reverse: cat\n", "add 12 40\n", "upper: moon\n", "sort: bread\n"]
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
# Two versions of one name trained differently enough that their greedy answers differ
# (test_alias_follows_moves checks that they do, or it would prove nothing). Small learning
# rates on purpose: a few steps more and the demo model answers every prompt with `</s>`.
SPECS = {
    "v1": tiny_spec("chat", max_steps=2, save_interval=2, lr=0.001, lora_rank=8),
    "v2": tiny_spec("chat", max_steps=2, save_interval=2, lr=0.003, lora_rank=8),
    "attn": tiny_spec("attn", max_steps=2, save_interval=2, lr=0.003, lora_rank=8,
                      target_modules=ATTENTION),
}


@dataclass
class Serving:
    vllm: VllmServer
    client: httpx.Client  # the loraplane server, as admin
    adapters: dict[str, dict]  # key -> the registry's adapter record
    configs: dict[str, dict]  # key -> its adapter_config.json
    prompts: list[list[int]]
    reference: dict[str, list[list[int]]]  # key ("base" too) -> peft's greedy tokens
    root: Path
    token: str  # the user token vLLM reads loraplane with
    loraplane_url: str

    def answer(self, model: str) -> tuple[list[list[int]], set[str]]:
        """vLLM's greedy tokens for every prompt, and the `model` its responses named."""
        tokens, names = [], set()
        for prompt in self.prompts:
            response = self.vllm.complete(model, prompt, NEW_TOKENS)
            assert response.status_code == 200, response.text
            body = response.json()
            tokens.append(body["choices"][0]["token_ids"])
            names.add(body["model"])
        return tokens, names

    def move(self, alias: str, key: str) -> None:
        adapter = self.adapters[key]
        response = self.client.put(f"/aliases/{adapter['name']}/{alias}",
                                   json={"adapter_id": adapter["id"]})
        assert response.status_code == 200, response.text


def _random_adapter(model_dir: Path, dest: Path, *, rank: int, seed: int,
                    use_dora: bool = False) -> Path:
    """A PEFT folder of random (non-zero) LoRA weights, to import."""
    torch.manual_seed(seed)
    model = get_peft_model(load_base(model_dir), LoraConfig(
        r=rank, lora_alpha=rank, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
        use_dora=use_dora))
    model.save_pretrained(dest)
    return dest


def _corrupt_blob(artifacts: Path, sha256: str) -> None:
    """Flip one byte of a stored blob in place (same size): the registry's bytes no longer
    hash to the sha256 it announces."""
    blob = artifacts / "blobs" / sha256[:2] / sha256[2:]
    blob.chmod(blob.stat().st_mode | stat.S_IWUSR)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory):
    require_vllm_venv()
    root = tmp_path_factory.mktemp("serving")
    database = f"sqlite:///{root / 'db.sqlite'}"
    with LiveServer(root / "api", database, env=SERVER_ENV) as server, \
            server.client() as client:
        worker = LiveWorker(server, root / "worker").start()
        try:
            submitted = {key: client.post("/jobs", json=spec).json()["id"]
                         for key, spec in SPECS.items()}
            jobs = {key: wait_for_job(client, job_id, {"succeeded", "failed", "cancelled"},
                                      timeout=400) for key, job_id in submitted.items()}
        finally:
            worker.stop()
        for key, job in jobs.items():
            assert job["state"] == "succeeded", (key, job.get("error"))
        model_dir = root / "worker" / "models" / BASE_MODEL  # the base the worker trained on
        sdk = connect(server.url, server.admin_token)
        adapters, configs = {}, {}
        for key, job in jobs.items():
            adapters[key] = client.get(f"/adapters/{job['adapter_id']}").json()
            folder = download_adapter(sdk, job["adapter_id"], root / "peft" / key)
            configs[key] = json.loads((folder / "adapter_config.json").read_text())
        for name, rank, seed in (("broken", 4, 1), ("wide", 32, 2), ("dora", 4, 3)):
            folder = _random_adapter(model_dir, root / "imports" / name, rank=rank, seed=seed,
                                     use_dora=name == "dora")
            imported, _ = import_adapter(sdk, folder, name=name, base_model=BASE_MODEL)
            adapters[name] = imported.to_dict()
        imported, _ = import_adapter(sdk, root / "imports" / "wide", name="foreign",
                                     base_model="another-base")  # same files, other base
        adapters["foreign"] = imported.to_dict()
        weights = next(f for f in adapters["broken"]["files"]
                       if f["name"] == "adapter_model.safetensors")
        _corrupt_blob(root / "api" / "artifacts", weights["sha256"])

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        prompts = [tokenizer(text).input_ids for text in PROMPTS]
        reference = {"base": peft_greedy(model_dir, None, prompts, NEW_TOKENS)}
        for key in jobs:
            reference[key] = peft_greedy(model_dir, root / "peft" / key, prompts, NEW_TOKENS)

        token = client.post("/tokens", json={"role": "user", "name": "vllm"}).json()["token"]
        vllm = VllmServer(model_dir, root / "vllm.log", served_name=BASE_MODEL,
                          max_lora_rank=MAX_LORA_RANK, env={
                              "LORAPLANE_SERVER": server.url, "LORAPLANE_TOKEN": token,
                              "LORAPLANE_VLLM_CACHE": str(root / "vllm-cache"),
                              "LORAPLANE_VLLM_BASE_MODEL": BASE_MODEL})
        vllm.start()
        try:
            yield Serving(vllm, client, adapters, configs, prompts, reference, root, token,
                          server.url)
        finally:
            vllm.stop()


def test_base_model_answers_as_transformers_does(serving: Serving):
    tokens, _ = serving.answer(BASE_MODEL)
    assert tokens == serving.reference["base"]


def test_default_targets_with_lm_head_match_peft(serving: Serving):
    config = serving.configs["v1"]
    assert "lm_head" in config["target_modules"], config["target_modules"]
    assert serving.reference["v1"] != serving.reference["base"]  # the adapter does something
    tokens, names = serving.answer(serving.adapters["v1"]["id"])
    assert tokens == serving.reference["v1"]
    assert names == {f"{serving.adapters['v1']['id']}=chat:1"}


def test_attention_only_targets_match_peft(serving: Serving):
    assert sorted(serving.configs["attn"]["target_modules"]) == sorted(ATTENTION)
    assert serving.reference["attn"] != serving.reference["base"]
    tokens, _ = serving.answer("attn:1")
    assert tokens == serving.reference["attn"]


def test_pinned_versions(serving: Serving):
    assert serving.answer("chat:1")[0] == serving.reference["v1"]
    assert serving.answer("chat:2")[0] == serving.reference["v2"]


def test_alias_follows_moves_without_restart(serving: Serving):
    assert serving.reference["v1"] != serving.reference["v2"]  # else a move shows nothing
    serving.move("prod", "v1")
    tokens, names = serving.answer("chat@prod")
    assert tokens == serving.reference["v1"] and names == {"chat@prod=chat:1"}
    serving.move("prod", "v2")
    tokens, names = serving.answer("chat@prod")  # the very next request: no stale version
    assert tokens == serving.reference["v2"] and names == {"chat@prod=chat:2"}
    chat = httpx.post(f"{serving.vllm.url}/v1/chat/completions", timeout=120, json={
        "model": "chat@prod", "messages": [{"role": "user", "content": "reverse: cat"}],
        "max_tokens": 4, "temperature": 0})
    assert chat.status_code == 200 and chat.json()["model"] == "chat@prod=chat:2", chat.text
    serving.move("prod", "v1")  # and back again: a fresh load of v1, not the old one's slot
    tokens, names = serving.answer("chat@prod")
    assert tokens == serving.reference["v1"] and names == {"chat@prod=chat:1#2"}


@pytest.mark.parametrize("model", ["nosuch@prod", "chat:99", "ad_" + "0" * 26])
def test_unknown_reference_is_404(serving: Serving, model: str):
    response = serving.vllm.complete(model, serving.prompts[0], NEW_TOKENS)
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert "loraplane has no adapter" in error["message"] and model in error["message"]
    assert "choices" not in response.json()


def test_adapter_failing_its_sha256_is_refused(serving: Serving):
    response = serving.vllm.complete("broken:1", serving.prompts[0], NEW_TOKENS)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "sha256" in message and serving.adapters["broken"]["id"] in message
    assert "choices" not in response.json()
    # Not cached as if it were whole: asking again is refused again.
    assert serving.vllm.complete("broken:1", serving.prompts[0], 1).status_code == 422


def test_rank_above_max_lora_rank_is_refused(serving: Serving):
    response = serving.vllm.complete("wide:1", serving.prompts[0], NEW_TOKENS)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert f"--max-lora-rank {MAX_LORA_RANK}" in message and "32" in message


def test_plugin_cache_is_by_digest(serving: Serving):
    assert serving.answer("chat:1")[0] == serving.reference["v1"]
    folder = Path(serving.vllm.env["LORAPLANE_VLLM_CACHE"]) / serving.adapters["v1"]["digest"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f["name"] for f in serving.adapters["v1"]["files"])


def test_adapter_vllm_cannot_load_is_refused_with_the_verdict(serving: Serving):
    verdict = serving.adapters["dora"]["serving"]["vllm"]
    assert verdict["ok"] is False
    response = serving.vllm.complete("dora:1", serving.prompts[0], NEW_TOKENS)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "cannot be served by vLLM" in message and "DoRA" in message


def test_plugin_never_serves_an_alias_it_cannot_keep_fresh(serving: Serving):
    """Outside the server: without AliasRefresh an alias is refused (pinned references are
    not); with it, an unmoved alias stays loaded and one loraplane cannot confirm is dropped."""
    serving.move("prod", "v1")
    env = {**os.environ, "LORAPLANE_SERVER": serving.loraplane_url,
           "LORAPLANE_TOKEN": serving.token}
    result = subprocess.run(
        [str(require_vllm_venv()), str(Path(__file__).with_name("plugin_checks.py")),
         "chat@prod", str(serving.root / "checks-cache")],
        check=False, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    status, message = outcomes["without_middleware"]
    assert status == 400 and "--middleware loraplane_vllm.AliasRefresh" in message
    assert outcomes["unmoved_kept"] is True
    assert outcomes["unreachable_unloaded"] is True
    status, message = outcomes["unreachable_resolve"]
    assert status == 503 and "cannot reach loraplane" in message


def test_adapter_of_another_base_model_is_refused(serving: Serving):
    response = serving.vllm.complete("foreign:1", serving.prompts[0], NEW_TOKENS)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "trained on another-base" in message and BASE_MODEL in message
