"""Jobs as clients see them: states and the moves between them, errors, progress, events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    cancelling = "cancelling"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class JobKind(StrEnum):
    """What a job does; every kind moves through the same states (TRANSITIONS)."""

    training = "training"
    evaluation = "evaluation"
    sample = "sample"


TERMINAL_STATES = frozenset({JobState.succeeded, JobState.failed, JobState.cancelled})


ACTIVE_STATES = frozenset({JobState.running, JobState.cancelling})


# Every move a job may make; `record_state` refuses the others. A claim moves queued ->
# running in its one UPDATE; a running job goes back to the queue on a retry, a hand-back or
# a lost lease; a cancel asked of a running job waits in `cancelling` for its worker.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.queued: frozenset({JobState.running, JobState.cancelled}),
    JobState.running: frozenset({JobState.queued, JobState.cancelling, JobState.succeeded,
                                 JobState.failed, JobState.cancelled}),
    JobState.cancelling: frozenset({JobState.cancelled}),
    **{state: frozenset() for state in TERMINAL_STATES},
}


class JobError(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `no_matching_modules`.")
    message: str
    retryable: bool = False


class Progress(BaseModel):
    step: int
    total: int | None


class Job(BaseModel):
    """A job as clients see it: training, or an evaluation or a sample (their own views are
    `Evaluation` and `Sample`)."""

    id: str
    project: str
    kind: JobKind = Field(JobKind.training, description="`training`, `evaluation` or `sample`.")
    name: str | None
    state: JobState
    priority: int
    spec: dict[str, Any] = Field(description="The validated spec, defaults filled in.")
    ignored_keys: list[str] = Field(description="Keys of the submitted spec the service does not use.")
    attempt: int
    max_attempts: int
    worker_id: str | None
    lease_expires_at: datetime | None
    progress: Progress
    metrics: dict[str, Any] | None
    error: JobError | None
    adapter_id: str | None
    parent_adapter_id: str | None
    devices: int | None = Field(
        1, description="Devices the job runs on (`cluster.component_placement.actor`); null: "
        "`all`, every device of the worker that claims it.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    warnings: list[str] = Field(
        default_factory=list,
        description="Only in the answer to POST /jobs: what in the spec makes an adapter an "
        "engine refuses (a lora_rank vLLM serves only with a larger --max-lora-rank, or "
        "continuing an adapter vLLM refuses); the job is queued all the same.",
    )


class JobEvent(BaseModel):
    id: int
    job_id: str
    kind: str = Field(description="`state`, `log`, `metrics` or `checkpoint`.")
    data: dict[str, Any]
    created_at: datetime
