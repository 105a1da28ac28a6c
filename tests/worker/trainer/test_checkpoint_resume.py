"""Determinism, crash-resume, cancel and handback, validation and the lr schedule."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import worker
from worker.demo import demo_dataset_path
from worker.trainer.errors import UserError
from worker.trainer.schedule import lr_factor

RESUME_SCRIPT = """
import json, sys
from pathlib import Path
from loraplane_client.models import JobSpec
from worker.trainer import TrainingInputs, run_training

class Quiet:
    def log(self, message): pass
    def progress(self, step, total, metrics): pass
    def checkpoint(self, step, directory): pass
    def should_stop(self): return None

args = json.loads(sys.argv[1])
inputs = TrainingInputs(
    base_model_dir=Path(args["base"]), train_files=[Path(args["data"])],
    resume_dir=Path(args["resume"]), work_dir=Path(args["work"]), device="cpu",
)
result = run_training(JobSpec.from_dict(args["spec"]), inputs, Quiet())
print(json.dumps({"output": str(result.output_dir), "step": result.step}))
"""

# 40 samples, batches of 8 = 2 x 4, 5 steps per epoch, 3 epochs: the resume below crosses an
# epoch boundary, with dropout, warmup + cosine decay, weight decay and clipping all in play.
RICH = {
    "actor": {
        "micro_batch_size": 4,
        "global_batch_size": 8,
        "seed": 5,
        "model": {"lora_rank": 4, "lora_dropout": 0.1},
        "optim": {
            "lr": 5e-3,
            "weight_decay": 0.01,
            "clip_grad": 0.5,
            "lr_scheduler": "cosine",
            "lr_warmup_steps": 3,
        },
    },
    "data": {"max_samples": 40, "seed": 11},
    "runner": {"max_epochs": 3, "max_steps": -1, "save_interval": 4},
}
FULL = {"actor": {"model": {"is_lora": False, "lora_rank": None, "lora_dropout": 0.0}}}


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _spec(make_spec, kind: str):
    spec = make_spec(RICH)
    return (
        make_spec({**RICH, "actor": {**RICH["actor"], **FULL["actor"]}}) if kind == "full" else spec
    )


def test_same_spec_and_seed_give_identical_bytes(train, make_spec) -> None:
    spec = make_spec(RICH)
    first, _, _ = train(spec)
    second, _, _ = train(spec)
    assert first.total_steps == 15
    assert _bytes(first.output_dir) == _bytes(second.output_dir)
    other, _, _ = train(make_spec({**RICH, "actor": {**RICH["actor"], "seed": 6}}))
    assert _bytes(other.output_dir) != _bytes(first.output_dir)


@pytest.mark.parametrize("kind", ["lora", "full"])
def test_resume_after_crash_is_bit_identical(train, make_spec, hooks_cls, tmp_path, kind) -> None:
    spec = _spec(make_spec, kind)
    straight, straight_hooks, _ = train(spec)

    crashing = hooks_cls(crash_at=10, keep_dir=tmp_path / "uploaded")
    with pytest.raises(hooks_cls.Crash):
        train(spec, hooks=crashing)
    assert [step for step, _ in crashing.checkpoints] == [4, 8]
    checkpoint = crashing.kept[8]
    # no pickle: tensors in safetensors, the rest JSON (and a full model's chat template)
    assert all(p.suffix in {".json", ".safetensors", ".jinja"} for p in checkpoint.iterdir())

    torch.manual_seed(12345)  # a fresh process would not share the crashed run's RNG
    resumed_hooks = hooks_cls()
    resumed, _, _ = train(spec, hooks=resumed_hooks, resume_dir=checkpoint)
    assert [s for s, _, _ in resumed_hooks.steps] == list(range(9, 16))
    assert resumed.step == resumed.total_steps == 15
    assert resumed_hooks.losses == straight_hooks.losses[8:]
    assert _bytes(resumed.output_dir) == _bytes(straight.output_dir)


def test_resume_in_a_fresh_process_is_bit_identical(
    train, make_spec, hooks_cls, tmp_path, demo_model_dir
) -> None:
    spec = make_spec(RICH)
    straight, _, _ = train(spec)
    crashing = hooks_cls(crash_at=6, keep_dir=tmp_path / "uploaded")
    with pytest.raises(hooks_cls.Crash):
        train(spec, hooks=crashing)
    args = {
        "spec": spec.to_dict(),
        "base": str(demo_model_dir),
        "data": str(demo_dataset_path()),
        "resume": str(crashing.kept[4]),
        "work": str(tmp_path / "fresh-process"),
    }
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # other set/dict orders than this process
    done = subprocess.run(
        [sys.executable, "-c", RESUME_SCRIPT, json.dumps(args)],
        cwd=Path(worker.__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["step"] == 15
    assert _bytes(Path(result["output"])) == _bytes(straight.output_dir)


def test_cancel_stops_after_the_current_step(train, make_spec, hooks_cls) -> None:
    hooks = hooks_cls(stop_at={3: "cancel"})
    result, _, _ = train(make_spec({"runner": {"max_steps": 10, "save_interval": 5}}), hooks=hooks)
    assert (result.stopped, result.step, result.total_steps) == ("cancel", 3, 10)
    assert [s for s, _, _ in hooks.steps] == [1, 2, 3]
    assert hooks.checkpoints == []
    assert not result.output_dir.exists()


def test_handback_saves_a_checkpoint_that_resumes_to_the_same_adapter(
    train, make_spec, hooks_cls
) -> None:
    spec = make_spec(RICH)
    straight, _, _ = train(spec)
    hooks = hooks_cls(stop_at={6: "handback"})
    handed, _, _ = train(spec, hooks=hooks)
    assert (handed.stopped, handed.step) == ("handback", 6)
    assert [step for step, _ in hooks.checkpoints] == [4, 6]
    assert handed.output_dir == hooks.checkpoints[-1][1] and handed.output_dir.is_dir()
    assert not hooks.checkpoints[0][1].exists()  # the superseded checkpoint was cleaned up
    resumed, _, _ = train(spec, resume_dir=handed.output_dir)
    assert _bytes(resumed.output_dir) == _bytes(straight.output_dir)


def test_handback_on_a_checkpoint_step_reuses_it(train, make_spec, hooks_cls) -> None:
    hooks = hooks_cls(stop_at={4: "handback"})
    result, _, _ = train(make_spec(RICH), hooks=hooks)
    assert [step for step, _ in hooks.checkpoints] == [4]
    assert result.output_dir == hooks.checkpoints[0][1]


def test_validation_every_interval(train, make_spec, write_jsonl) -> None:
    val = write_jsonl("val.jsonl", '{"prompt": "reverse: sun\\n", "answer": "nus"}\n' * 3)
    spec = make_spec({"runner": {"max_steps": 5, "val_check_interval": 2}})
    result, hooks, _ = train(spec, val_files=[val])
    with_val = [step for step, _, metrics in hooks.steps if "val_loss" in metrics]
    assert with_val == [2, 4, 5]  # every 2 steps, and after the last one
    assert result.metrics["val_loss"] == hooks.steps[-1][2]["val_loss"]
    assert math.isfinite(result.metrics["val_loss"]) and result.metrics["val_loss"] > 0
    no_val, _, _ = train(make_spec({"runner": {"max_steps": 2}}), val_files=[val])
    assert "val_loss" not in no_val.metrics


def test_lr_schedule_shapes() -> None:
    warm_cos = lr_factor("cosine", 2, 10)
    assert [warm_cos(s) for s in range(3)] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert warm_cos(6) == pytest.approx(0.5)
    linear = lr_factor("linear", 0, 4)
    assert [linear(s) for s in range(4)] == pytest.approx([1.0, 0.75, 0.5, 0.25])
    assert lr_factor("constant", 0, 4)(3) == 1.0


def test_reported_lr_follows_the_schedule(train, make_spec) -> None:
    spec = make_spec(
        {
            "actor": {"optim": {"lr": 1e-2, "lr_scheduler": "linear", "lr_warmup_steps": 1}},
            "runner": {"max_steps": 5},
        }
    )
    _, hooks, _ = train(spec)
    lrs = [metrics["lr"] for _, _, metrics in hooks.steps]
    assert lrs == pytest.approx([5e-3, 1e-2, 7.5e-3, 5e-3, 2.5e-3])


def test_incomplete_or_foreign_checkpoints_are_refused(
    train, make_spec, hooks_cls, tmp_path
) -> None:
    hooks = hooks_cls(stop_at={2: "handback"})
    handed, _, _ = train(make_spec(RICH), hooks=hooks)
    other_data = make_spec({**RICH, "data": {**RICH["data"], "max_samples": 24}})
    with pytest.raises(UserError) as info:
        train(other_data, resume_dir=handed.output_dir)
    assert info.value.code == "invalid_checkpoint"
    (handed.output_dir / "optimizer.safetensors").unlink()
    with pytest.raises(UserError) as info:
        train(make_spec(RICH), resume_dir=handed.output_dir)
    assert info.value.code == "invalid_checkpoint" and "optimizer.safetensors" in info.value.message
