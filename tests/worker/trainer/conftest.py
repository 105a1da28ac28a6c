"""Fixtures for trainer tests: the demo model built once, spec and run helpers, recording hooks."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from loraplane_client.models import JobSpec

from tests.specs import worker_spec
from worker.demo import demo_dataset_path, ensure_demo_model


class Crash(RuntimeError):
    """Raised from a hook to simulate a worker dying mid-run."""


class RecordingHooks:
    """TrainingHooks that record everything; can stop, crash, or keep copies of checkpoints."""

    def __init__(
        self,
        *,
        stop_at: dict[int, str] | None = None,
        crash_at: int | None = None,
        keep_dir: Path | None = None,
    ) -> None:
        self.logs: list[str] = []
        self.steps: list[tuple[int, int, dict[str, float]]] = []
        self.checkpoints: list[tuple[int, Path]] = []
        self.kept: dict[int, Path] = {}
        self.stop_at = stop_at or {}
        self.crash_at = crash_at
        self.keep_dir = keep_dir

    def log(self, message: str) -> None:
        self.logs.append(message)

    def progress(self, step: int, total: int, metrics: dict[str, float]) -> None:
        self.steps.append((step, total, metrics))
        if step == self.crash_at:
            raise Crash(f"simulated crash at step {step}")

    def checkpoint(self, step: int, directory: Path) -> None:
        assert directory.is_dir()
        self.checkpoints.append((step, directory))
        if self.keep_dir is not None:  # what the worker's upload would preserve
            self.kept[step] = Path(shutil.copytree(directory, self.keep_dir / f"step-{step}"))

    def should_stop(self) -> str | None:
        step = self.steps[-1][0] if self.steps else 0
        return self.stop_at.get(step)

    @property
    def losses(self) -> list[float]:
        return [metrics["loss"] for _, _, metrics in self.steps]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


BASE_SPEC: dict[str, Any] = {
    "actor": {
        "micro_batch_size": 8,
        "global_batch_size": 8,
        "seed": 1,
        "model": {"model_path": "demo-tiny-llama", "is_lora": True, "lora_rank": 4},
        "optim": {"lr": 1e-2},
    },
    "data": {"max_length": 64},
    "runner": {"max_steps": 6, "save_interval": -1},
}


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_demo_model(tmp_path_factory.mktemp("models"))


@pytest.fixture
def make_spec() -> Callable[..., JobSpec]:
    """`make_spec({"actor": {...}})`: BASE_SPEC deep-merged with overrides, validated."""

    def build(overrides: dict[str, Any] | None = None) -> JobSpec:
        return worker_spec(_merge(BASE_SPEC, overrides or {}))

    return build


@pytest.fixture
def train(demo_model_dir: Path, tmp_path: Path) -> Callable[..., tuple[Any, RecordingHooks, Any]]:
    """Run a TrainingSession on the demo model; returns (result, hooks, session)."""
    from worker.trainer import TrainingInputs
    from worker.trainer.loop import TrainingSession

    counter = iter(range(1000))

    def run(
        spec: JobSpec,
        *,
        hooks: RecordingHooks | None = None,
        train_files: list[Path] | None = None,
        val_files: list[Path] | None = None,
        init_adapter_dir: Path | None = None,
        resume_dir: Path | None = None,
        work_dir: Path | None = None,
        base_model_dir: Path | None = None,
        device: str = "cpu",
    ):
        hooks = hooks or RecordingHooks()
        inputs = TrainingInputs(
            base_model_dir=base_model_dir or demo_model_dir,
            train_files=train_files or [demo_dataset_path()],
            val_files=val_files or [],
            init_adapter_dir=init_adapter_dir,
            resume_dir=resume_dir,
            work_dir=work_dir or tmp_path / f"work-{next(counter)}",
            device=device,
        )
        session = TrainingSession(spec, inputs, hooks)
        return session.run(), hooks, session

    return run


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


RecordingHooks.Crash = Crash  # type: ignore[attr-defined]


@pytest.fixture
def hooks_cls() -> type[RecordingHooks]:
    """The RecordingHooks class (test modules cannot import from conftest)."""
    return RecordingHooks
