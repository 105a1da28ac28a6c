"""Scaling: a job on 2 CPU ranks x 1 thread (gloo) against 1 rank x 1 thread, same global batch;
with `--device cuda`, on 2 GPUs and on all GPUs (NCCL) against one GPU.

Both sides run the trainer itself: the one-rank side `TrainingSession` in this process with one
torch thread, the two-rank side `worker.launch.run_distributed` (the worker's path for a
multi-device job: forkserver ranks, torchrun's env contract, FSDP2 or DDP) with one thread per
rank. Same ~6M-parameter Llama, same data, global batch, micro-batch, steps and seed; the loss
curves are compared as a check that both trained the same model.

Figures (per optimizer step, median over the steps after the first `--warmup`, from rank 0's
own step timer: `tokens / tokens_per_s`):
- step time ratio = 2-rank step time / 1-rank step time (ideal 0.5 on two free cores);
- collective overhead = 2-rank step time - 1-rank step time / 2: what the split does not win
  back (all-gathers, reduce-scatters / all-reduce, the per-step stop broadcast and loss
  all-reduce, and the second rank's share of a shared machine).

Modes: `full_shard` (FSDP2) and `no_shard` (DDP) for LoRA; `full_shard` for full fine-tuning
with `--full`. Rounds alternate 1-rank/2-rank; each keeps its best round.

On a machine with several GPUs (`--device cuda`, run by bench/gpu_check.sh when it sees two or
more): a ~0.5B Llama in bf16, LoRA and full fine-tuning, `full_shard` and `no_shard`, on 1 GPU,
2 GPUs and all of them; per case the step time, the scaling efficiency
(1-GPU step time / (N x N-GPU step time), 1.0 = linear) and rank 0's peak GPU memory
(`max_memory_allocated`), which shows what full_shard saves against no_shard; written to
`<out>/distributed.json` too.

    python bench/distributed.py [--quick] [--steps 12] [--rounds 2] [--full]
    python bench/distributed.py --device cuda --out "$OUT"      # 2 or more GPUs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch

from tests.specs import worker_spec
from worker.demo import build_demo_model, demo_dataset_path
from worker.launch import RankPlan, run_distributed
from worker.trainer import TrainingInputs
from worker.trainer.hooks import MetricsHooks
from worker.trainer.loop import TrainingSession

MODEL = {"hidden_size": 256, "intermediate_size": 704, "num_hidden_layers": 6,
         "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 32}
GPU_MODEL = {"vocab_size": 32000, "hidden_size": 1024, "intermediate_size": 4864,  # ~0.5B
             "num_hidden_layers": 24, "num_attention_heads": 16, "num_key_value_heads": 8,
             "head_dim": 64, "max_position_embeddings": 4096}
MODEL_NAME = "bench-llama"


def machine() -> str:
    """Cores and load average (without bench/_common's server dependencies, for GPU boxes)."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return f"{os.cpu_count()} cores, {gpus} GPU(s), load {load}"


def spec(args: argparse.Namespace, strategy: str, lora: bool, devices: int = 2):
    precision = {"precision": "bf16"} if args.device == "cuda" else {}
    return worker_spec({
        "actor": {"micro_batch_size": args.micro_batch, "global_batch_size": args.global_batch,
                  "seed": 7,
                  "model": {"model_path": MODEL_NAME, "is_lora": lora, "lora_rank": 16,
                            **precision},
                  "optim": {"lr": 1e-3 if lora else 1e-4},
                  "fsdp_config": {"sharding_strategy": strategy}},
        "data": {"max_length": args.max_length, "group_by_length": False},
        "runner": {"max_steps": args.steps, "save_interval": -1},
        "cluster": {"component_placement": {"actor": f"0-{devices - 1}"}},
    })


def step_seconds(hooks: MetricsHooks, warmup: int) -> float:
    times = [m["tokens"] / m["tokens_per_s"] for m in hooks.metrics[warmup:]]
    return statistics.median(times)


def run(model_dir: Path, work: Path, job, ranks: int, device: str = "cpu") -> MetricsHooks:
    hooks = MetricsHooks()
    inputs = TrainingInputs(base_model_dir=model_dir, train_files=[demo_dataset_path()],
                            work_dir=work, device="cuda:0" if device == "cuda" else "cpu")
    if ranks == 1:
        threads = torch.get_num_threads()
        if device == "cpu":
            torch.set_num_threads(1)
        else:
            torch.cuda.reset_peak_memory_stats(0)
        try:
            TrainingSession(job, inputs, hooks).run()
        finally:
            torch.set_num_threads(threads)
    elif device == "cpu":
        run_distributed(job, inputs, hooks, RankPlan(devices=["cpu"] * ranks, threads_per_rank=1))
    else:
        devices = [f"cuda:{i}" for i in range(ranks)]
        threads = max(1, (os.cpu_count() or 1) // ranks)
        run_distributed(job, inputs, hooks, RankPlan(devices=devices, threads_per_rank=threads))
    return hooks


def gpu_main(args: argparse.Namespace, root: Path) -> int:
    """1 GPU vs 2 GPUs vs all GPUs: step time, scaling efficiency, memory per GPU."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count < 2:
        print(f"distributed (GPU): needs 2 or more CUDA devices, this machine has {count}; "
              "nothing measured")
        return 2
    model_dir = root / MODEL_NAME
    build_demo_model(model_dir, GPU_MODEL)
    sizes = sorted({2, count})
    rows = []
    for kind in ("lora", "full"):
        for strategy in ("full_shard", "no_shard"):
            one = run(model_dir, root / f"{kind}-{strategy}-1", spec(args, strategy, kind == "lora", 1),
                      1, "cuda")
            t1 = step_seconds(one, args.warmup)
            m1 = one.metrics[-1].get("max_memory_mib", float("nan"))
            for n in sizes:
                hooks = run(model_dir, root / f"{kind}-{strategy}-{n}",
                            spec(args, strategy, kind == "lora", n), n, "cuda")
                tn = step_seconds(hooks, args.warmup)
                row = {"kind": kind, "strategy": strategy, "gpus": n, "step_s": tn,
                       "one_gpu_step_s": t1, "efficiency": t1 / (n * tn),
                       "max_memory_mib_rank0": hooks.metrics[-1].get("max_memory_mib"),
                       "one_gpu_max_memory_mib": m1,
                       "loss_drift": max(abs(a["loss"] - b["loss"]) / abs(a["loss"])
                                         for a, b in zip(one.metrics, hooks.metrics, strict=True))}
                rows.append(row)
                print(f"distributed GPU {kind} {strategy} x{n}: {tn * 1e3:.0f} ms/step vs 1 GPU "
                      f"{t1 * 1e3:.0f} ms, scaling efficiency {row['efficiency']:.2f}, memory "
                      f"per GPU {row['max_memory_mib_rank0']:.0f} MiB vs 1 GPU {m1:.0f} MiB, "
                      f"loss drift {row['loss_drift']:.1e}", flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "distributed.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"distributed GPU: {len(rows)} cases on {', '.join(map(str, sizes))} GPUs; {machine()}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 steps, 1 round, LoRA full_shard")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--global-batch", type=int, default=16)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--full", action="store_true", help="also full fine-tuning (full_shard)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="(cuda) distributed.json here")
    args = parser.parse_args()
    if args.device == "cuda":
        if args.max_length == 256 and args.global_batch == 16:  # GPU-sized defaults
            args.global_batch, args.micro_batch, args.max_length = 32, 4, 512
        with tempfile.TemporaryDirectory(prefix="loraplane-dist-") as tmp:
            return gpu_main(args, Path(tmp))
    modes = [("lora", "full_shard"), ("lora", "no_shard")]
    if args.quick:
        args.steps, args.rounds, modes = 6, 1, [("lora", "full_shard")]
    if args.full:
        modes.append(("full", "full_shard"))
    with tempfile.TemporaryDirectory(prefix="loraplane-dist-") as tmp:
        root = Path(tmp)
        model_dir = root / MODEL_NAME
        build_demo_model(model_dir, MODEL)
        warm = run(model_dir, root / "warm", spec(args, "full_shard", True), 2)  # forkserver
        del warm
        status = 0
        for kind, strategy in modes:
            job = spec(args, strategy, kind == "lora")
            best = {1: float("inf"), 2: float("inf")}
            losses: dict[int, list[float]] = {}
            for round_ in range(args.rounds):
                for ranks in (1, 2):
                    hooks = run(model_dir, root / f"{kind}-{strategy}-{ranks}-{round_}", job, ranks)
                    best[ranks] = min(best[ranks], step_seconds(hooks, args.warmup))
                    losses[ranks] = [m["loss"] for m in hooks.metrics]
            drift = max(abs(a - b) / abs(a) for a, b in zip(losses[1], losses[2], strict=True))
            ratio = best[2] / best[1]
            overhead = best[2] - best[1] / 2
            same = drift < 1e-4
            status |= not same
            print(f"distributed {kind} {strategy}: 2 ranks x 1 thread {best[2] * 1e3:.0f} ms/step "
                  f"vs 1 rank x 1 thread {best[1] * 1e3:.0f} ms/step = {ratio:.2f}x the step "
                  f"time (ideal 0.50), collective overhead {overhead * 1e3:.0f} ms/step "
                  f"({overhead / best[2]:.0%} of the 2-rank step); loss curves "
                  f"{'equal' if same else 'DIFFER'} (max rel {drift:.1e}); batch "
                  f"{args.global_batch} x {args.max_length} tokens, {args.steps} steps, best of "
                  f"{args.rounds}; {machine()}")
        return status


if __name__ == "__main__":
    raise SystemExit(main())
