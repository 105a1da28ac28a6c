"""Plain domain objects the service layer returns; the API serves them as they are."""

from __future__ import annotations

import base64
import json
import math
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from service.errors import InvalidRequest

T = TypeVar("T")


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    cancelling = "cancelling"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


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
    """A training job as clients see it."""

    id: str
    project: str
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
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobEvent(BaseModel):
    id: int
    job_id: str
    kind: str = Field(description="`state`, `log`, `metrics` or `checkpoint`.")
    data: dict[str, Any]
    created_at: datetime


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


def encode_cursor(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MIN_BIGINT, MAX_BIGINT = -(2**63), 2**63 - 1
MAX_INT = 2**31 - 1  # INTEGER columns (steps, ranks) on PostgreSQL


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float (NaN, ±Infinity: a skipped fp16 step's grad norm)
    replaced by None: PostgreSQL's JSON columns refuse them, and JSON cannot carry them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    return value


def decode_cursor(cursor: str) -> Any:
    """Decode an opaque cursor; a tampered one is a 422, never a 500."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise InvalidRequest("cursor is not one this service issued", code="invalid_cursor") from None
    # No cursor is a boolean, nor an integer no column holds (both would fail in SQL).
    if isinstance(value, bool) or (
        isinstance(value, int) and not MIN_BIGINT <= value <= MAX_BIGINT
    ):
        raise InvalidRequest("cursor is not one this service issued", code="invalid_cursor")
    return value
