"""Benchmark: LoRA vs full fine-tuning of a ~0.5B Llama (built from a config) through run_training.

Reports median tokens/s (first steps excluded as warm-up), peak GPU memory and trainable
parameters for each mode, as JSON in `<out>/gpu_bench.json` and as a table on stdout.

    python bench/gpu_train.py --out "$OUT"            # on a CUDA machine
    python bench/gpu_train.py --size tiny --device cpu --steps 4   # smoke test anywhere
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.demo import build_demo_model
from service.spec import JobSpec
from service.trainer import run_training

logger = logging.getLogger("bench.gpu_train")

SIZES = {
    # ~0.50B parameters: 24 layers x 18.1M + 2 x 32000 x 1024 (untied embeddings and head).
    "0.5b": {
        "vocab_size": 32000,
        "hidden_size": 1024,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "max_position_embeddings": 4096,
    },
    "tiny": {},  # the demo model's config
}


class BenchHooks:
    def __init__(self) -> None:
        self.metrics: list[dict[str, float]] = []

    def log(self, message: str) -> None:
        pass  # the trainer logs the same line through `logging`

    def progress(self, step: int, total: int, metrics: dict[str, float]) -> None:
        self.metrics.append(metrics)
        logger.info(
            "step %d/%d loss %.4f tokens/s %.0f",
            step,
            total,
            metrics["loss"],
            metrics["tokens_per_s"],
        )

    def checkpoint(self, step: int, directory: Path) -> None:
        pass

    def should_stop(self) -> None:
        return None


def write_dataset(path: Path, samples: int, seq_len: int) -> None:
    """Random-letter prompt/answer pairs; with the byte tokenizer each is ~seq_len tokens."""
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz "
    half = seq_len // 2 - 2
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(samples):
            prompt = "".join(rng.choice(letters) for _ in range(half))
            answer = "".join(rng.choice(letters) for _ in range(half))
            handle.write(json.dumps({"prompt": prompt, "answer": answer}) + "\n")


def bench_one(mode: str, model_dir: Path, data: Path, work: Path, args: argparse.Namespace) -> dict:
    model = {"model_path": str(model_dir), "precision": args.precision}
    model.update(
        {"is_lora": True, "lora_rank": args.rank} if mode == "lora" else {"is_lora": False}
    )
    spec = JobSpec.model_validate(
        {
            "actor": {
                "micro_batch_size": args.micro_batch,
                "global_batch_size": args.micro_batch,
                "model": model,
                "optim": {"lr": 1e-4 if mode == "lora" else 1e-5},
            },
            "data": {"max_length": args.seq_len},
            "runner": {"max_steps": args.steps, "save_interval": -1},
        }
    )
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    hooks = BenchHooks()
    started = time.perf_counter()
    result = run_training(
        spec,
        base_model_dir=model_dir,
        train_files=[data],
        val_files=[],
        init_adapter_dir=None,
        resume_dir=None,
        work_dir=work / mode,
        device=args.device,
        hooks=hooks,
    )
    wall = time.perf_counter() - started
    measured = hooks.metrics[args.warmup :] or hooks.metrics
    out = {
        "mode": mode,
        "steps": result.step,
        "tokens_per_step": measured[0]["tokens"],
        "tokens_per_s_median": statistics.median(m["tokens_per_s"] for m in measured),
        "step_time_s_median": statistics.median(m["tokens"] / m["tokens_per_s"] for m in measured),
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "trainable_params": result.trainable_params,
        "total_params": result.total_params,
        "first_loss": hooks.metrics[0]["loss"],
        "last_loss": hooks.metrics[-1]["loss"],
        "wall_s_including_load_and_save": wall,
        "output_bytes": sum(p.stat().st_size for p in result.output_dir.iterdir()),
    }
    del result
    gc.collect()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--size", choices=sorted(SIZES), default="0.5b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="bf16")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the medians")
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--modes", default="lora,full")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA device; use --device cpu --size tiny for a smoke test")

    with tempfile.TemporaryDirectory(prefix="loraplane-bench-") as tmp:
        tmp_path = Path(tmp)
        model_dir = tmp_path / f"llama-{args.size}"
        started = time.perf_counter()
        build_demo_model(model_dir, SIZES[args.size])
        logger.info("built %s model in %.1fs", args.size, time.perf_counter() - started)
        data = tmp_path / "bench.jsonl"
        write_dataset(data, args.micro_batch * (args.steps + 1), args.seq_len)
        results = [
            bench_one(mode, model_dir, data, tmp_path, args) for mode in args.modes.split(",")
        ]

    report = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device,
        "torch": torch.__version__,
        "size": args.size,
        "precision": args.precision,
        "micro_batch": args.micro_batch,
        "seq_len": args.seq_len,
        "lora_rank": args.rank,
        "results": results,
    }
    print(f"{'mode':<6}{'tokens/s':>12}{'step s':>9}{'peak GiB':>10}{'trainable':>14}{'loss':>16}")
    for r in results:
        peak = f"{r['peak_gpu_memory_gib']:.2f}" if r["peak_gpu_memory_gib"] is not None else "-"
        print(
            f"{r['mode']:<6}{r['tokens_per_s_median']:>12.0f}{r['step_time_s_median']:>9.3f}"
            f"{peak:>10}{r['trainable_params']:>14,}"
            f"{r['first_loss']:>8.3f}->{r['last_loss']:.3f}"
        )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_bench.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
