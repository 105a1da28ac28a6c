"""Training on two CPU ranks (gloo) trains the one-process model: the same loss curve to float
tolerance, an adapter peft loads, one ordinary HF folder for a full fine-tune under full_shard;
checkpoints resume across world sizes; a cancel stops every rank after the same step; a rank
killed with SIGKILL ends the attempt with no rank process left."""

from __future__ import annotations

import math
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import psutil
import pytest
import torch

from tests.specs import worker_spec
from worker.demo import demo_dataset_path, ensure_demo_model
from worker.launch import RankFailed, RankPlan, run_distributed
from worker.trainer import TrainingInputs
from worker.trainer.errors import UserError
from worker.trainer.loop import TrainingSession

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

TWO_RANKS = RankPlan(devices=["cpu", "cpu"], threads_per_rank=1)
STEPS = 4


class Hooks:
    """What the worker's hooks receive, with a copy of every checkpoint (the upload)."""

    def __init__(self, keep: Path, *, stop_from: tuple[int, str] | None = None,
                 on_step: Any = None) -> None:
        self.keep = keep
        self.logs: list[str] = []
        self.steps: list[tuple[int, dict[str, float]]] = []
        self.kept: dict[int, Path] = {}
        self.stop_from = stop_from  # (step, request): asked once that step is reported
        self.asked_after: int | None = None  # the last step reported when first asked
        self.on_step = on_step

    def log(self, message: str) -> None:
        self.logs.append(message)

    def progress(self, step: int, total: int, metrics: dict[str, float]) -> None:
        self.steps.append((step, metrics))
        if self.on_step is not None:
            self.on_step(step)

    def checkpoint(self, step: int, directory: Path) -> None:
        self.kept[step] = Path(shutil.copytree(directory, self.keep / f"step-{step}"))

    def should_stop(self) -> str | None:
        step = self.steps[-1][0] if self.steps else 0
        if self.stop_from is None or step < self.stop_from[0]:
            return None
        if self.asked_after is None:
            self.asked_after = step
        return self.stop_from[1]

    @property
    def losses(self) -> list[float]:
        return [m["loss"] for _, m in self.steps]


def _spec(*, lora: bool = True, strategy: str = "full_shard", global_batch: int = 8,
          micro_batch: int = 2, save_interval: int = 2, validate: bool = False,
          steps: int = STEPS):
    return worker_spec({
        "actor": {"micro_batch_size": micro_batch, "global_batch_size": global_batch, "seed": 3,
                  "model": {"model_path": "demo-tiny-llama", "is_lora": lora, "lora_rank": 4},
                  "optim": {"lr": 1e-2 if lora else 2e-3},
                  "fsdp_config": {"sharding_strategy": strategy}},
        "data": {"max_length": 64},
        "runner": {"max_steps": steps, "save_interval": save_interval,
                   "val_check_interval": 2 if validate else -1},
        "cluster": {"component_placement": {"actor": "0-1"}},
    })


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_demo_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank runs: the same kernels, the same sums
    yield
    torch.set_num_threads(threads)


def _inputs(base: Path, work: Path, resume: Path | None = None) -> TrainingInputs:
    # validation runs only where the spec sets val_check_interval
    return TrainingInputs(base_model_dir=base, train_files=[demo_dataset_path()],
                          val_files=[demo_dataset_path()], resume_dir=resume, work_dir=work)


def _one_rank(spec, base: Path, tmp: Path, name: str, resume: Path | None = None, **kw):
    hooks = Hooks(_mk(tmp / f"{name}-kept"), **kw)
    result = TrainingSession(spec, _inputs(base, tmp / name, resume), hooks).run()
    return result, hooks


def _two_ranks(spec, base: Path, tmp: Path, name: str, resume: Path | None = None,
               pids: list[int] | None = None, **kw):
    hooks = Hooks(_mk(tmp / f"{name}-kept"), **kw)
    result = run_distributed(spec, _inputs(base, tmp / name, resume), hooks, TWO_RANKS,
                             on_started=pids.extend if pids is not None else None)
    return result, hooks


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _same_curve(a: list[float], b: list[float]) -> None:
    assert len(a) == len(b) == STEPS
    for x, y in zip(a, b, strict=True):
        assert math.isclose(x, y, rel_tol=1e-5), (a, b)


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Equal up to float noise (summation order), which AdamW's normalised step makes visible
    on single elements whose gradient is near zero: compared tensor by tensor in norm."""
    for name, tensor in a.items():
        diff = float((tensor - b[name]).norm()) / max(float(tensor.norm()), 1e-12)
        assert diff < 1e-4, (name, diff)


def _rank_processes_gone(pids: list[int]) -> None:
    assert len(pids) == 2
    alive = [p for p in pids if psutil.pid_exists(p)
             and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"rank processes still running: {alive}"


@pytest.fixture(scope="module")
def lora_runs(base_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("lora")
    spec = _spec()
    pids: list[int] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module-scoped: set up before the autouse fixture runs
    try:
        one = _one_rank(spec, base_dir, tmp, "one")
    finally:
        torch.set_num_threads(threads)
    return one, _two_ranks(spec, base_dir, tmp, "two", pids=pids), pids, tmp


def test_lora_on_two_ranks_trains_the_one_rank_adapter(lora_runs, base_dir: Path):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    (one, one_hooks), (two, two_hooks), pids, _ = lora_runs
    _same_curve(one_hooks.losses, two_hooks.losses)
    assert any("2 devices, full_shard" in line for line in two_hooks.logs)
    _rank_processes_gone(pids)
    assert sorted(p.name for p in two.output_dir.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors"]
    a = load_file(one.output_dir / "adapter_model.safetensors")
    b = load_file(two.output_dir / "adapter_model.safetensors")
    assert a.keys() == b.keys() and a
    _same_weights(a, b)
    assert (two.rank, two.trainable_params) == (one.rank, one.trainable_params)

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir),
                                      two.output_dir)
    bare = AutoModelForCausalLM.from_pretrained(base_dir)
    ids = torch.tensor([[1, 5, 9, 13, 2]])
    with torch.no_grad():
        assert not torch.allclose(model(input_ids=ids).logits, bare(input_ids=ids).logits)
    # a checkpoint of the two ranks holds the gathered adapter and the whole optimizer state
    kept = two_hooks.kept[2]
    assert {"adapter_model.safetensors", "optimizer.safetensors", "trainer_state.json"} <= {
        p.name for p in kept.iterdir()}


def test_a_two_rank_checkpoint_resumes_on_one_rank_and_back(lora_runs, base_dir: Path):
    (_, one_hooks), (_, two_hooks), _, tmp = lora_runs
    spec = _spec()
    # written on 2 ranks at step 2, continued on 1
    _, resumed = _one_rank(spec, base_dir, tmp, "two-then-one", resume=two_hooks.kept[2])
    assert [s for s, _ in resumed.steps] == [3, 4]
    for x, y in zip(resumed.losses, one_hooks.losses[2:], strict=True):
        assert math.isclose(x, y, rel_tol=1e-5)
    assert any("written on 2 device(s); this attempt runs on 1" in m for m in resumed.logs)
    # written on 1 rank at step 2, continued on 2
    _, back = _two_ranks(spec, base_dir, tmp, "one-then-two", resume=one_hooks.kept[2])
    for x, y in zip(back.losses, one_hooks.losses[2:], strict=True):
        assert math.isclose(x, y, rel_tol=1e-5)
    # another global batch is another run: a clear error, whatever the world size
    with pytest.raises(UserError, match="global_batch_size"):
        _one_rank(_spec(global_batch=4), base_dir, tmp, "other-batch", resume=two_hooks.kept[2])


def test_full_fine_tuning_with_full_shard_writes_one_ordinary_hf_folder(base_dir: Path,
                                                                       tmp_path: Path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    spec = _spec(lora=False, save_interval=-1, validate=True)
    one, one_hooks = _one_rank(spec, base_dir, tmp_path, "one")
    two, two_hooks = _two_ranks(spec, base_dir, tmp_path, "two")
    _same_curve(one_hooks.losses, two_hooks.losses)
    # validation: each rank a share of the batches, the loss summed over the ranks
    val = [(m["val_loss"], n["val_loss"]) for (_, m), (_, n) in
           zip(one_hooks.steps, two_hooks.steps, strict=True) if "val_loss" in m]
    assert len(val) == 2 and all(math.isclose(a, b, rel_tol=1e-5) for a, b in val), val
    assert any("2 devices x 2 x 2" in line for line in two_hooks.logs)
    names = sorted(p.name for p in two.output_dir.iterdir())
    assert "model.safetensors" in names and "config.json" in names
    assert not [n for n in names if "-of-" in n or n.endswith(".index.json") or "shard" in n]
    a, b = (load_file(r.output_dir / "model.safetensors") for r in (one, two))
    assert a.keys() == b.keys()
    _same_weights(a, b)
    model = AutoModelForCausalLM.from_pretrained(two.output_dir)
    assert sum(p.numel() for p in model.parameters()) == two.total_params


def test_ddp_with_uneven_shares_trains_the_one_rank_model(base_dir: Path, tmp_path: Path):
    """Global batch 3 on 2 ranks, micro-batch 1: rank 0 runs 2 samples, rank 1 one plus a
    zero-weight micro-batch, so both run the same collectives (DDP here)."""
    spec = _spec(strategy="no_shard", global_batch=3, micro_batch=1, save_interval=-1)
    _, one = _one_rank(spec, base_dir, tmp_path, "one")
    _, two = _two_ranks(spec, base_dir, tmp_path, "two")
    _same_curve(one.losses, two.losses)
    assert any("2 devices x 2 x 1" in line for line in two.logs)


def test_a_cancel_stops_both_ranks_after_the_same_step(base_dir: Path, tmp_path: Path):
    pids: list[int] = []
    result, hooks = _two_ranks(_spec(strategy="no_shard", save_interval=-1, steps=40), base_dir,
                               tmp_path, "cancel", pids=pids, stop_from=(2, "cancel"))
    # Asked once step k was reported: rank 0 reads the request after the step it is running
    # (k + 1, unless the supervisor's view trails rank 0 by a step on a loaded machine: k + 2)
    # and broadcasts it, so every rank stops after that same step.
    assert result.stopped == "cancel" and hooks.asked_after is not None
    assert hooks.asked_after <= result.step <= hooks.asked_after + 2
    assert [s for s, _ in hooks.steps] == list(range(1, result.step + 1))
    assert any(f"cancelled after step {result.step}" in line for line in hooks.logs)
    _rank_processes_gone(pids)


def test_a_hand_back_checkpoints_on_every_rank_and_stops(base_dir: Path, tmp_path: Path):
    pids: list[int] = []
    result, hooks = _two_ranks(_spec(save_interval=-1, steps=40), base_dir, tmp_path,
                               "handback", pids=pids, stop_from=(1, "handback"))
    assert result.stopped == "handback" and hooks.asked_after is not None
    assert hooks.asked_after <= result.step <= hooks.asked_after + 2
    assert list(hooks.kept) == [result.step]  # the hand-back checkpoint, uploaded
    assert (hooks.kept[result.step] / "optimizer.safetensors").is_file()
    _rank_processes_gone(pids)


def test_a_rank_killed_mid_run_ends_the_attempt_and_leaves_no_rank(base_dir: Path,
                                                                   tmp_path: Path):
    pids: list[int] = []

    def kill_rank_1(step: int) -> None:
        if step == 3:
            os.kill(pids[1], signal.SIGKILL)

    with pytest.raises(RankFailed, match="rank 1 killed by SIGKILL"):
        _two_ranks(_spec(steps=40), base_dir, tmp_path, "killed", pids=pids, on_step=kill_rank_1)
    _rank_processes_gone(pids)
