"""The worker protocol's bodies: claim, lease and inputs, reports, failures, checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from service.schemas.common import MAX_INT
from service.schemas.jobs import Job, JobKind
from service.schemas.registry import FileRef
from service.schemas.tasks import Task


class ClaimRequest(BaseModel):
    worker_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@-]+$")
    wait_seconds: float = Field(0.0, ge=0, description="Long-poll up to this long (capped).")
    device: str | None = Field(None, max_length=64)
    devices: int = Field(1, ge=1, le=1024, description="Devices the worker offers; it is given "
                         "only jobs that need at most that many (or `all`).")


class Report(BaseModel):
    events: list[WorkerEvent] = Field(default_factory=list, max_length=1000)
    step: int | None = Field(None, ge=0, le=MAX_INT)
    total: int | None = Field(None, ge=0, le=MAX_INT)
    metrics: dict[str, float | int | str | None] | None = None


class Release(BaseModel):
    reason: str = Field("handed back by the worker", max_length=500)


class Lease(BaseModel):
    job: Job
    lease_id: str
    lease_expires_at: datetime
    lease_seconds: float
    heartbeat_seconds: float = Field(description="How often the worker should heartbeat.")


class HeartbeatReply(BaseModel):
    lease_expires_at: datetime
    cancel_requested: bool = Field(description="The user asked to cancel: stop after this step.")


class WorkerEvent(BaseModel):
    kind: str = Field(pattern="^(log|metrics)$")
    data: dict[str, Any]


class JobFailure(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    message: str = Field(max_length=10_000)
    retryable: bool = Field(description="System errors are retried; user errors are not.")


class SourceFile(BaseModel):
    """A file the worker downloads, verifies and saves under `name` in one folder."""

    name: str = Field(description="Name in the PEFT folder (`adapter_config.json`, ...).")
    sha256: str
    size: int
    url: str = Field(description="Server-relative URL (a path) to GET it from.")


class LoraSource(BaseModel):
    """What a worker continues from: a registry adapter, a checkpoint, or a local folder."""

    kind: Literal["adapter", "checkpoint", "local"]
    lora_path: str
    adapter_id: str | None = None
    checkpoint_id: str | None = None
    job_id: str | None = Field(None, description="The job that saved the checkpoint.")
    path: str | None = Field(None, description="Worker-local folder (kind `local`).")
    rank: int | None = None
    files: list[SourceFile] = Field(default_factory=list)


class ResumePoint(BaseModel):
    """The checkpoint a claimed job resumes from."""

    checkpoint_id: str
    step: int
    files: list[SourceFile]


class JobInputs(BaseModel):
    """What a worker must fetch before it trains; every URL is a lease-fenced worker path."""

    checkpoint: ResumePoint | None = Field(None, description="Resume here instead of step 0.")
    lora_source: LoraSource | None = Field(None, description="The adapter `lora_path` names.")
    datasets: dict[str, SourceFile] = Field(
        default_factory=dict, description="Uploaded datasets (`ds_…`) the spec names.")
    kind: JobKind = Field(JobKind.training, description="What to run: train, evaluate or sample.")
    task: Task | None = Field(None, description="An evaluation's or a sample's parameters.")

    def files(self) -> list[SourceFile]:
        """Every file of these inputs."""
        return [*self.datasets.values(), *(self.checkpoint.files if self.checkpoint else []),
                *(self.lora_source.files if self.lora_source else [])]


class CheckpointUpload(BaseModel):
    step: int = Field(ge=0, le=MAX_INT)
    files: list[FileRef] = Field(min_length=1, max_length=1000)


class Claim(Lease, JobInputs):
    """A lease plus the job's inputs."""
