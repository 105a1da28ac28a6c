"""Plain domain objects the service layer returns; the API serves them as they are."""

from __future__ import annotations

import base64
import json
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


def decode_cursor(cursor: str) -> Any:
    """Decode an opaque cursor; a tampered one is a 422, never a 500."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise InvalidRequest("cursor is not one this service issued", code="invalid_cursor") from None
