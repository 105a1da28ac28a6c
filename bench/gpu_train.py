"""Benchmark: LoRA vs full fine-tuning of a ~0.5B Llama (built from a config) through run_training,
each against a bare peft / torch loop on the same model, data, batch, precision and seed.

Modes: `lora` and `full` run the service's trainer (`run_training`, what a worker calls);
`bare-lora` (get_peft_model + AdamW) and `bare-full` (AdamW on every parameter) are plain loops
written here, fed the very same batches (built with the trainer's data functions), with fp32
master weights under `torch.autocast(bf16)`, loss over answer tokens, clip 1.0. The trainer's
full mode matches those numerics; its LoRA mode holds the frozen base in bf16 (the param
dtype; LoRA weights and AdamW state fp32), so its memory is lower than the bare LoRA loop's by
design and its tokens/s is compared against a loop that does more memory traffic. Reports median tokens/s (first steps excluded as warm-up), peak GPU memory
(`torch.cuda.max_memory_allocated`, reset per mode) and trainable parameters for each mode, and
trainer/bare ratios, as JSON in `<out>/gpu_bench.json`, as a table, and as one summary line.
Exits with an error when no CUDA device is visible (unless `--device cpu`).

    python bench/gpu_train.py --out "$OUT"            # on a CUDA machine
    python bench/gpu_train.py --size tiny --device cpu --steps 4   # smoke test anywhere
"""

from __future__ import annotations

import argparse
import contextlib
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

from tests.specs import worker_spec
from worker.demo import build_demo_model
from worker.trainer import TrainingInputs, run_training
from worker.trainer.hooks import MetricsHooks
from worker.trainer.model import DEFAULT_TARGET_MODULES

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


class BenchHooks(MetricsHooks):
    """Keeps each step's metrics and logs the step (the trainer logs its own lines itself)."""

    def progress(self, step: int, total: int, metrics: dict[str, float]) -> None:
        super().progress(step, total, metrics)
        logger.info(
            "step %d/%d loss %.4f tokens/s %.0f",
            step,
            total,
            metrics["loss"],
            metrics["tokens_per_s"],
        )


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
    spec = worker_spec(
        {
            "actor": {
                "micro_batch_size": args.micro_batch,
                "global_batch_size": args.micro_batch,
                "model": model,
                "optim": {"lr": 1e-4 if mode == "lora" else 1e-5},
            },
            # the bare loops take shuffled batches (epoch_order), so the trainer does too
            "data": {"max_length": args.seq_len, "group_by_length": False},
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
        TrainingInputs(base_model_dir=model_dir, train_files=[data], work_dir=work / mode,
                       device=args.device),
        hooks,
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


def bare_one(mode: str, model_dir: Path, data: Path, args: argparse.Namespace) -> dict:
    """The baseline: a hand-written peft (LoRA) or torch (full) loop, same batches and numerics."""
    import torch.nn.functional as F
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from worker.trainer.data import IGNORE_INDEX, collate, epoch_order, load_examples

    lora = mode == "bare-lora"
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision) if cuda else None
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    examples, _ = load_examples(
        [data],
        tokenizer,
        prompt_key="prompt",
        answer_key="answer",
        max_length=args.seq_len,
        append_eos=True,
    )
    torch.manual_seed(42)
    model = AutoModelForCausalLM.from_pretrained(
        str(model_dir), local_files_only=True, dtype=torch.float32
    )
    if lora:
        model = get_peft_model(
            model,
            LoraConfig(
                r=args.rank,
                lora_alpha=args.rank,
                lora_dropout=0.0,
                init_lora_weights="gaussian",
                target_modules=list(DEFAULT_TARGET_MODULES),
                task_type="CAUSAL_LM",
            ),
        )
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4 if lora else 1e-5)
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    metrics = []
    per_epoch = -(-len(examples) // args.micro_batch)
    for step in range(args.steps):
        t0 = time.perf_counter()
        epoch, position = divmod(step, per_epoch)
        order = epoch_order(len(examples), seed=42, epoch=epoch, shuffle=True)  # as the trainer
        chosen = order[position * args.micro_batch : (position + 1) * args.micro_batch]
        batch = collate([examples[i] for i in chosen], tokenizer.pad_token_id)
        ids, mask, labels = (
            batch[k].to(device, non_blocking=True)
            for k in ("input_ids", "attention_mask", "labels")
        )
        with torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext():
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        loss = (
            F.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                labels[:, 1:].reshape(-1),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            )
            / (labels[:, 1:] != IGNORE_INDEX).sum()
        )
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach())  # synchronises with the device
        tokens = float(batch["attention_mask"].sum())
        metrics.append(
            {"loss": value, "tokens": tokens, "tokens_per_s": tokens / (time.perf_counter() - t0)}
        )
        logger.info(
            "%s step %d/%d loss %.4f tokens/s %.0f",
            mode,
            step + 1,
            args.steps,
            value,
            metrics[-1]["tokens_per_s"],
        )
    wall = time.perf_counter() - started
    measured = metrics[args.warmup :] or metrics
    out = {
        "mode": mode,
        "steps": args.steps,
        "tokens_per_step": measured[0]["tokens"],
        "tokens_per_s_median": statistics.median(m["tokens_per_s"] for m in measured),
        "step_time_s_median": statistics.median(m["tokens"] / m["tokens_per_s"] for m in measured),
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "trainable_params": sum(p.numel() for p in params),
        "total_params": sum(p.numel() for p in model.parameters()),
        "first_loss": metrics[0]["loss"],
        "last_loss": metrics[-1]["loss"],
        "wall_s_including_load_and_save": wall,
        "output_bytes": None,
    }
    del model, optimizer, params
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
    parser.add_argument("--modes", default="lora,bare-lora,full,bare-full")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "gpu_train: FAILED: no CUDA device visible to torch "
            f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); run it on a GPU "
            "machine, or use --device cpu --size tiny for a smoke test",
            file=sys.stderr,
        )
        return 2

    with tempfile.TemporaryDirectory(prefix="loraplane-bench-") as tmp:
        tmp_path = Path(tmp)
        model_dir = tmp_path / f"llama-{args.size}"
        started = time.perf_counter()
        build_demo_model(model_dir, SIZES[args.size])
        logger.info("built %s model in %.1fs", args.size, time.perf_counter() - started)
        data = tmp_path / "bench.jsonl"
        write_dataset(data, args.micro_batch * (args.steps + 1), args.seq_len)
        results = [
            bare_one(mode, model_dir, data, args)
            if mode.startswith("bare-")
            else bench_one(mode, model_dir, data, tmp_path, args)
            for mode in args.modes.split(",")
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
    print(f"{'mode':<10}{'tokens/s':>12}{'step s':>9}{'peak GiB':>10}{'trainable':>14}{'loss':>16}")
    for r in results:
        peak = f"{r['peak_gpu_memory_gib']:.2f}" if r["peak_gpu_memory_gib"] is not None else "-"
        print(
            f"{r['mode']:<10}{r['tokens_per_s_median']:>12.0f}{r['step_time_s_median']:>9.3f}"
            f"{peak:>10}{r['trainable_params']:>14,}"
            f"{r['first_loss']:>8.3f}->{r['last_loss']:.3f}"
        )
    by_mode = {r["mode"]: r for r in results}
    parts = []
    for mode in ("lora", "full"):
        if mode in by_mode:
            r = by_mode[mode]
            peak = r["peak_gpu_memory_gib"]
            part = f"{mode} {r['tokens_per_s_median']:.0f} tokens/s" + (
                f", peak {peak:.2f} GiB" if peak is not None else ""
            )
            bare = by_mode.get(f"bare-{mode}")
            if bare:
                part += (
                    f" (bare loop {bare['tokens_per_s_median']:.0f} tokens/s, ratio "
                    f"{r['tokens_per_s_median'] / bare['tokens_per_s_median']:.3f}"
                    + (
                        f", peak {bare['peak_gpu_memory_gib']:.2f} GiB"
                        if bare["peak_gpu_memory_gib"] is not None
                        else ""
                    )
                    + ")"
                )
            parts.append(part)
    if "lora" in by_mode and "full" in by_mode and by_mode["lora"]["peak_gpu_memory_gib"]:
        lora, full = by_mode["lora"], by_mode["full"]
        parts.append(
            f"full/LoRA memory {full['peak_gpu_memory_gib'] / lora['peak_gpu_memory_gib']:.1f}x"
        )
    device = report["device"]
    print(
        f"gpu_train: {args.size} Llama ({results[0]['total_params'] / 1e6:.1f}M params), "
        f"{args.precision}, batch {args.micro_batch} x {args.seq_len}, {args.steps} steps on "
        f"{device}: " + "; ".join(parts)
    )
    report["by_mode"] = by_mode
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_bench.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
