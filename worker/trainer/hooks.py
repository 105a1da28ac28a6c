"""What the worker hands the trainer and gets back: plain types, no torch import."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

StopRequest = Literal["cancel", "handback"]
# A stop request as one integer (shared memory, a broadcast tensor); a cancel outranks a
# hand-back.
STOP_CODES: dict[StopRequest | None, int] = {None: 0, "cancel": 1, "handback": 2}
STOP_NAMES = {code: name for name, code in STOP_CODES.items()}


class TrainingHooks(Protocol):
    """Callbacks the worker gives `run_training`; all are called from the training thread."""

    def log(self, message: str) -> None:
        """A notable event, meant for the job's event stream."""

    def progress(self, step: int, total: int, metrics: dict[str, float]) -> None:
        """After every optimizer step: loss, lr, grad_norm, tokens_per_s, tokens,
        padding_share, epoch (+ val_loss). `metrics` is a fresh dict each step, never changed
        afterwards."""

    def checkpoint(self, step: int, directory: Path) -> None:
        """A checkpoint folder is complete; upload it before returning."""

    def should_stop(self) -> StopRequest | None:
        """Polled after every optimizer step: None, "cancel" or "handback"."""


class MetricsHooks:
    """Hooks for a run with no server behind it (a benchmark, a script): each step's metrics
    are kept in `metrics`; logs and checkpoints are let go; the run is never stopped."""

    def __init__(self) -> None:
        self.metrics: list[dict[str, float]] = []

    def log(self, message: str) -> None:
        pass

    def progress(self, step: int, total: int, metrics: dict[str, float]) -> None:
        self.metrics.append(metrics)

    def checkpoint(self, step: int, directory: Path) -> None:
        pass

    def should_stop(self) -> StopRequest | None:
        return None


@dataclass(frozen=True)
class TrainingInputs:
    """The files a run reads and writes, all on local disk, and the device it runs on."""

    base_model_dir: Path
    train_files: list[Path]
    val_files: list[Path] = field(default_factory=list)
    init_adapter_dir: Path | None = None  # the adapter to continue (`lora_path`)
    resume_dir: Path | None = None  # a checkpoint of this job: wins over init_adapter_dir
    work_dir: Path = Path("work")  # checkpoints and the output folder go here
    device: str = "cpu"


@dataclass
class TrainingResult:
    """What a training run produced."""

    kind: str  # "lora" | "full"
    output_dir: Path  # peft folder or full HF folder; handback: the checkpoint; cancel: unwritten
    step: int  # optimizer steps done in total (including steps before a resume)
    total_steps: int
    metrics: dict[str, float]
    rank: int | None
    alpha: float | None
    target_modules: list[str] = field(default_factory=list)  # sorted leaf names wrapped
    trainable_params: int = 0
    total_params: int = 0
    base_fingerprint: str = ""  # sha256 of the base config.json as canonical JSON
    stopped: StopRequest | None = None
