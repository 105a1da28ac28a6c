"""What a stored job says about the adapter it makes, and which jobs hold on to their source."""

from __future__ import annotations

from typing import Any, Literal

from db import models
from service.schemas import JobState

# Jobs in these states hold on to the adapter or checkpoint they continue from.
HOLDING_STATES = (JobState.queued.value, JobState.running.value, JobState.cancelling.value)


def model_spec(job: models.Job) -> dict[str, Any]:
    """`actor.model` of a stored job spec."""
    return (job.spec or {}).get("actor", {}).get("model", {})


def job_kind(job: models.Job) -> Literal["lora", "full"]:
    """`lora` for a LoRA job, `full` for full fine-tuning."""
    return "lora" if model_spec(job).get("is_lora") else "full"


def adapter_name_for(job: models.Job) -> str:
    """`runner.experiment_name`, else the job's name, else its id."""
    runner = (job.spec or {}).get("runner", {}) or {}
    return runner.get("experiment_name") or job.name or job.id
