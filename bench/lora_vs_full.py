"""LoRA vs full fine-tuning: peak memory, step time and trainable parameters, same model and data.

Each mode runs the service's trainer (`worker.trainer.run_training`, what a worker calls) in a
fresh child process, on a Llama built from a config (weights dominate its memory, as in large
models), the bundled demo data, the same batch and seed, AdamW in both.

Memory: on CPU, the peak resident set during training (the kernel's VmHWM, reset once the model,
data and optimizer are set up, read after the last step) minus the process's resident set before
the model was loaded: weights + gradients + optimizer state + activations. On CUDA,
`torch.cuda.max_memory_allocated()`. Step time: median of the trainer's per-step compute time
(`tokens / tokens_per_s`), first step left out. The baseline is full fine-tuning in the same run:
the figure is LoRA / full for memory and step time, and trainable / total parameters.

    python bench/lora_vs_full.py [--quick] [--steps 8] [--rounds 2] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine

from worker.trainer.hooks import MetricsHooks  # no torch import: the parent stays light

# ~85M parameters (~340 MB in fp32), byte vocabulary: almost all of it in the decoder layers.
MODEL = {
    "hidden_size": 768,
    "intermediate_size": 2048,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "num_key_value_heads": 4,
}
RANK, BATCH, SEED = 16, 8, 42


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def hwm_kib() -> int:
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))


class Hooks(MetricsHooks):
    """Resets the peak-RSS mark when training starts; collects per-step metrics."""

    def __init__(self, cuda: bool) -> None:
        super().__init__()
        self.cuda = cuda
        self.reset = False

    def log(self, message: str) -> None:
        if message.startswith("training ") and not self.reset:  # set-up done, step 1 next
            self.reset = True
            if not self.cuda:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")


def child(mode: str, model_dir: Path, steps: int, device: str, work: Path) -> dict:
    """One training run in this (fresh) process; returns its figures."""
    import torch

    from tests.specs import worker_spec
    from worker.demo import demo_dataset_path
    from worker.trainer import TrainingInputs, run_training
    from worker.trainer import loop as _loaded  # noqa: F401  (torch, transformers, peft)

    cuda = device.startswith("cuda")
    model = {"model_path": str(model_dir), "precision": "bf16" if cuda else "fp32"}
    model |= {"is_lora": True, "lora_rank": RANK} if mode == "lora" else {"is_lora": False}
    spec = worker_spec(
        {
            "actor": {
                "model": model,
                "micro_batch_size": BATCH,
                "global_batch_size": BATCH,
                "seed": SEED,
                "optim": {"lr": 1e-4 if mode == "lora" else 1e-5},
            },
            "data": {"train_data_paths": ["demo"]},
            "runner": {"max_steps": steps, "save_interval": -1},
        }
    )
    hooks = Hooks(cuda)
    before = rss_kib()  # libraries loaded, no model yet
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before_gpu = torch.cuda.memory_allocated()
    result = run_training(
        spec,
        TrainingInputs(base_model_dir=model_dir, train_files=[demo_dataset_path()],
                       work_dir=work / mode, device=device),
        hooks,
    )
    peak = (torch.cuda.max_memory_allocated() - before_gpu) if cuda else (hwm_kib() - before) * 1024
    step_times = [m["tokens"] / m["tokens_per_s"] for m in hooks.metrics[1:]]
    return {
        "mode": mode,
        "peak_bytes": peak,
        "memory": "cuda_max_allocated" if cuda else "rss",
        "whole_run_peak_rss_bytes": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        * 1024,
        "step_s": statistics.median(step_times),
        "tokens_per_step": hooks.metrics[-1]["tokens"],
        "trainable": result.trainable_params,
        "total": result.total_params,
        "loss": [hooks.metrics[0]["loss"], hooks.metrics[-1]["loss"]],
        "output_bytes": sum(p.stat().st_size for p in result.output_dir.iterdir()),
    }


def run_child(mode: str, model_dir: Path, args: argparse.Namespace, work: Path) -> dict:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
        "PYTHONWARNINGS": "ignore",
    }
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--model-dir",
            str(model_dir),
            "--steps",
            str(args.steps),
            "--device",
            args.device,
            "--work",
            str(work),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 steps, 1 round (make bench)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="lora/full pairs, alternated")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1: steady timings on a shared machine)",
    )
    parser.add_argument("--child", choices=["lora", "full"], help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model_dir, args.steps, args.device, args.work)))
        return
    if args.quick:
        args.steps, args.rounds = 4, 1
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda asked for, but torch sees no CUDA device")
    from worker.demo import build_demo_model

    with tempfile.TemporaryDirectory(prefix="loraplane-bench-") as tmp:
        model_dir = Path(tmp) / "llama-85m"
        started = time.perf_counter()
        build_demo_model(model_dir, MODEL)
        built = time.perf_counter() - started
        runs: dict[str, list[dict]] = {"lora": [], "full": []}
        for n in range(args.rounds):
            for mode in ("lora", "full"):
                runs[mode].append(run_child(mode, model_dir, args, Path(tmp) / f"w{n}"))
    lora, full = runs["lora"], runs["full"]
    mem_l = min(r["peak_bytes"] for r in lora)
    mem_f = min(r["peak_bytes"] for r in full)
    step_l = min(r["step_s"] for r in lora)
    step_f = min(r["step_s"] for r in full)
    trainable, total = lora[0]["trainable"], lora[0]["total"]
    what = "peak CUDA allocated" if args.device.startswith("cuda") else "peak RSS delta in training"
    print(
        f"lora_vs_full: {what} LoRA {mem_l / 2**20:.0f} MiB vs full {mem_f / 2**20:.0f} MiB "
        f"(LoRA/full {mem_l / mem_f:.2f}, {mem_f / mem_l:.1f}x less); step time LoRA "
        f"{step_l * 1e3:.0f} ms vs full {step_f * 1e3:.0f} ms (LoRA/full {step_l / step_f:.2f}); "
        f"trainable {trainable:,} of {total:,} params ({100 * trainable / total:.2f}%; full "
        f"trains {full[0]['trainable']:,}); output {lora[0]['output_bytes'] / 2**20:.1f} MiB vs "
        f"{full[0]['output_bytes'] / 2**20:.0f} MiB; run_training on {args.device}, 85M Llama "
        f"(built in {built:.0f} s), LoRA r={RANK}, batch {BATCH} x "
        f"{lora[0]['tokens_per_step']:.0f} tokens, {args.steps} steps, best of {args.rounds}, "
        f"{args.threads} thread(s); {machine()}"
    )


if __name__ == "__main__":
    main()
