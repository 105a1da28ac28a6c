"""Real-model memory: precision, gradient checkpointing and length-grouped batching, each mode
through the service's trainer (`run_training`) in a fresh child process, ratios in one run.

1. memory: a Qwen2-shaped model built from a config (hidden 1024, 16 layers, 50k vocabulary,
   278M parameters; --quick: 8 layers of 512, 32k vocabulary, 61M): full fine-tuning in fp32,
   LoRA on an fp32 base, LoRA on a bf16 base; the model is saved in bf16, as released
   checkpoints are. Figure: peak memory of the run (CPU: peak resident set, sampled, minus
   the resident set before the model was loaded; CUDA:
   `max_memory_allocated`), LoRA-bf16 / full (target <= 0.25) and LoRA-bf16 / LoRA-fp32
   (target <= 0.6).
2. checkpointing: LoRA at sequence length 1100 on a 16 x 512 Qwen2 (--quick: 4 x 256):
   activation memory of the steps (peak minus the memory once set-up is done) with and
   without gradient checkpointing (target: at least 2x lower), and the step time it costs.
3. padding: a mixed-length dataset (16..600 bytes, log-uniform), shuffled vs length-grouped
   batches: mean padding share per step and real tokens/s.

    python bench/real_models.py [--quick] [--device cpu|cuda] [--only memory,checkpointing,padding]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # no bench/_common: it needs httpx, which GPU machines lack
from worker.trainer.hooks import MetricsHooks  # (no torch import)

SHAPES = {
    "memory": {"hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 16,
               "num_attention_heads": 16, "num_key_value_heads": 2, "vocab_size": 50000},
    "memory-quick": {"hidden_size": 512, "intermediate_size": 1408, "num_hidden_layers": 8,
                     "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 32000},
    "long": {"hidden_size": 512, "intermediate_size": 1408, "num_hidden_layers": 16,
             "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 32000},
    "long-quick": {"hidden_size": 256, "intermediate_size": 704, "num_hidden_layers": 4,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32000},
    "small": {"hidden_size": 256, "intermediate_size": 704, "num_hidden_layers": 4,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 259},
}
LONG_TOKENS = 1100  # 880 prompt + 220 answer bytes, [bos] and [eos]


def machine() -> str:
    """One line: cores, memory, load average (the noise of a shared machine)."""
    memory = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), "0")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {int(memory) / 2**20:.0f} GiB RAM, load {load}"


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s+(\d+)", f.read()).group(1)) * 1024


class RssPeak:
    """Peak resident memory (VmRSS, sampled every 2 ms, resettable unlike VmHWM): allocated
    memory plus the weights mapped from safetensors files (resident pages of the process)."""

    def __init__(self) -> None:
        self.peak = _status("VmRSS")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _status("VmRSS"))

    def reset(self) -> None:
        self.peak = _status("VmRSS")

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, _status("VmRSS"))


class Hooks(MetricsHooks):
    """Marks the memory when set-up is done (the `training N steps` line); keeps metrics."""

    def __init__(self, cuda: bool, anon: RssPeak | None) -> None:
        super().__init__()
        self.cuda = cuda
        self.anon = anon
        self.setup_bytes = 0
        self.setup_peak = 0  # the peak before the mark, which resets the peak counter

    def log(self, message: str) -> None:
        if message.startswith("training ") and not self.setup_bytes:
            import torch

            if self.cuda:
                self.setup_peak = torch.cuda.max_memory_allocated()
                self.setup_bytes = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
            else:
                self.setup_peak = self.anon.peak
                self.setup_bytes = _status("VmRSS")
                self.anon.reset()


def child(args: argparse.Namespace) -> dict:
    """One training run in this fresh process."""
    import torch

    from tests.specs import worker_spec
    from worker.trainer import TrainingInputs, run_training
    from worker.trainer import loop as _loaded  # noqa: F401  (torch, transformers, peft)

    cuda = args.device.startswith("cuda")
    options = json.loads(args.options)
    spec = worker_spec(options["spec"])
    anon = None if cuda else RssPeak()
    hooks = Hooks(cuda, anon)
    before = torch.cuda.memory_allocated() if cuda else _status("VmRSS")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    result = run_training(
        spec,
        TrainingInputs(base_model_dir=Path(options["model"]), train_files=[Path(options["data"])],
                       work_dir=Path(options["work"]), device=args.device),
        hooks,
    )
    peak = torch.cuda.max_memory_allocated() if cuda else anon.stop()
    later = hooks.metrics[1:] or hooks.metrics
    return {
        # weights, gradients, optimizer state, activations: the whole run's peak
        "peak_bytes": max(peak, hooks.setup_peak) - before,
        "step_bytes": peak - hooks.setup_bytes,  # what the steps add on top of the set-up
        "step_s": statistics.median(m["tokens"] / m["tokens_per_s"] for m in later),
        "tokens_per_s": statistics.median(m["tokens_per_s"] for m in later),
        "padding_share": statistics.fmean(m["padding_share"] for m in hooks.metrics),
        "params": result.total_params,
        "trainable": result.trainable_params,
        "loss": [hooks.metrics[0]["loss"], hooks.metrics[-1]["loss"]],
    }


def run(args: argparse.Namespace, work: Path, model: Path, data: Path, spec: dict) -> dict:
    options = {"spec": spec, "model": str(model), "data": str(data),
               "work": str(work / f"run-{time.monotonic_ns()}")}
    # glibc: large blocks from mmap, given back when freed, so the resident set follows what
    # is allocated (otherwise freed heap memory stays resident and inflates the peaks)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONWARNINGS": "ignore",
           "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--device", args.device, "--options",
         json.dumps(options)],
        env=env, cwd=ROOT, capture_output=True, text=True, check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def build(folder: Path, shape: dict, dtype: str = "float32") -> Path:
    """A Qwen2 from a config, saved in `dtype` (released checkpoints are bf16)."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from worker.demo import build_byte_tokenizer

    config = Qwen2Config(**shape, max_position_embeddings=4096, tie_word_embeddings=False,
                         bos_token_id=256, eos_token_id=257, pad_token_id=258)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).to(getattr(torch, dtype)).save_pretrained(folder)
    build_byte_tokenizer().save_pretrained(folder)
    return folder


def dataset(path: Path, count: int, lengths: tuple[int, int]) -> Path:
    """Prompt/answer pairs of byte text, prompt lengths log-uniform in `lengths`."""
    rng = random.Random(1)
    low, high = map(math.log, lengths)
    rows = []
    for _ in range(count):
        size = int(math.exp(rng.uniform(low, high)))
        text = "".join(rng.choice("abcdefgh ") for _ in range(size))
        rows.append({"prompt": text + "\n", "answer": text[: max(4, size // 4)][::-1]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _spec(model: dict, *, batch: int, micro: int, steps: int, max_length: int, **data) -> dict:
    return {"actor": {"micro_batch_size": micro, "global_batch_size": batch, "seed": 1,
                      "model": model, "optim": {"lr": 1e-4}},
            "data": {"max_length": max_length, **data},
            "runner": {"max_steps": steps, "save_interval": -1}}


def bench_memory(args, work: Path) -> str:
    shape = SHAPES["memory-quick" if args.quick else "memory"]
    model = build(work / "memory-model", shape, "bfloat16")
    data = dataset(work / "short.jsonl", 64, (16, 64))
    runs = {}
    for name, model_spec in [
        ("full-fp32", {"is_lora": False, "precision": "fp32"}),
        ("lora-fp32", {"is_lora": True, "lora_rank": 16, "precision": "fp32"}),
        ("lora-bf16", {"is_lora": True, "lora_rank": 16, "precision": "bf16"}),
    ]:
        spec = _spec({"model_path": str(model), **model_spec}, batch=4, micro=4, steps=2,
                     max_length=128)
        runs[name] = run(args, work, model, data, spec)
    mib = {k: v["peak_bytes"] / 2**20 for k, v in runs.items()}
    to_full, to_fp32 = mib["lora-bf16"] / mib["full-fp32"], mib["lora-bf16"] / mib["lora-fp32"]
    verdict = "met" if to_full <= 0.25 and to_fp32 <= 0.6 else "MISSED"
    return (
        f"memory: peak {mib['full-fp32']:.0f} MiB full fp32, {mib['lora-fp32']:.0f} MiB LoRA on "
        f"fp32 base, {mib['lora-bf16']:.0f} MiB LoRA on bf16 base; LoRA-bf16/full {to_full:.3f} "
        f"(<= 0.25), LoRA-bf16/LoRA-fp32 {to_fp32:.3f} (<= 0.6): {verdict}; "
        f"{runs['full-fp32']['params'] / 1e6:.0f}M-parameter Qwen2 "
        f"({shape['num_hidden_layers']} x {shape['hidden_size']}, vocab {shape['vocab_size']}), "
        f"saved in bf16, LoRA r=16, batch 4, 2 steps"
    )


def bench_checkpointing(args, work: Path) -> str:
    shape = SHAPES["long-quick" if args.quick else "long"]
    model = build(work / "long-model", shape)
    data = dataset(work / "long.jsonl", 16, (880, 881))
    runs = {}
    for on in (False, True):
        spec = _spec({"model_path": str(model), "is_lora": True, "lora_rank": 16,
                      "precision": "fp32", "gradient_checkpointing": on},
                     batch=2, micro=2, steps=2, max_length=LONG_TOKENS)
        runs[on] = run(args, work, model, data, spec)
    off_mib, on_mib = runs[False]["step_bytes"] / 2**20, runs[True]["step_bytes"] / 2**20
    cost = runs[True]["step_s"] / runs[False]["step_s"]
    verdict = "met" if off_mib >= 2 * on_mib else "MISSED"
    return (
        f"checkpointing: step memory {off_mib:.0f} MiB without, {on_mib:.0f} MiB with gradient "
        f"checkpointing ({off_mib / on_mib:.1f}x lower, target >= 2x: {verdict}); step time "
        f"{runs[False]['step_s']:.2f} s -> {runs[True]['step_s']:.2f} s ({cost:.2f}x); LoRA r=16 "
        f"on a {shape['num_hidden_layers']} x {shape['hidden_size']} Qwen2, 2 x "
        f"{LONG_TOKENS} tokens a step"
    )


def bench_padding(args, work: Path) -> str:
    model = build(work / "small-model", SHAPES["small"])
    data = dataset(work / "mixed.jsonl", 256, (16, 600))
    steps = 8 if args.quick else 16
    runs = {}
    for grouped in (False, True):
        spec = _spec({"model_path": str(model), "is_lora": True, "lora_rank": 16,
                      "precision": "fp32"},
                     batch=16, micro=4, steps=steps, max_length=1024, group_by_length=grouped)
        runs[grouped] = run(args, work, model, data, spec)
    before, after = runs[False], runs[True]
    return (
        f"padding: padding share {before['padding_share']:.3f} shuffled -> "
        f"{after['padding_share']:.3f} grouped by length; {before['tokens_per_s']:.0f} -> "
        f"{after['tokens_per_s']:.0f} real tokens/s "
        f"({after['tokens_per_s'] / before['tokens_per_s']:.2f}x); "
        f"256 samples of 16..600 bytes, batch 16 = 4 x 4, {steps} steps, 4 x 256 Qwen2"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller models (make bench)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="memory,checkpointing,padding")
    parser.add_argument("--out", type=Path, help="also write the lines as JSON here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--options", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    benches = {"memory": bench_memory, "checkpointing": bench_checkpointing,
               "padding": bench_padding}
    lines = {}
    with tempfile.TemporaryDirectory(prefix="loraplane-real-") as tmp:
        for name in args.only.split(","):
            started = time.perf_counter()
            lines[name] = benches[name](args, Path(tmp))
            print(f"real_models {lines[name]}; {time.perf_counter() - started:.0f} s, "
                  f"{args.device}, {args.threads} thread(s); {machine()}", flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "real_models.json").write_text(json.dumps(lines, indent=2) + "\n")


if __name__ == "__main__":
    main()
