"""LoRA and full fine-tuning of causal LMs from a JobSpec (torch + peft).

Importing this package is cheap; torch, transformers and peft load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from worker.trainer.files import base_fingerprint, resolve_model_dir
from worker.trainer.hooks import StopRequest, TrainingHooks, TrainingInputs, TrainingResult

if TYPE_CHECKING:
    from loraplane_client.models import JobSpec

__all__ = [
    "StopRequest",
    "TrainingHooks",
    "TrainingInputs",
    "TrainingResult",
    "base_fingerprint",
    "linear_module_names",
    "resolve_model_dir",
    "run_training",
]


def run_training(spec: JobSpec, inputs: TrainingInputs, hooks: TrainingHooks,
                 dist: Any = None) -> TrainingResult:
    """Train per the spec (README, "The job spec") and return what was produced; `dist`
    (worker/trainer/distributed.py's `Distributed`): this process is one rank of several."""
    from worker.trainer.loop import TrainingSession

    return TrainingSession(spec, inputs, hooks, dist).run()


def linear_module_names(model: Any) -> list[str]:
    """Sorted unique leaf names of the model's linear layers (what target_modules can name)."""
    from worker.trainer import model as _model

    return _model.linear_module_names(model)
