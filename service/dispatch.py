"""The worker protocol's steps that span the queue and the registry: claim with inputs,
checkpoints, and completion (success and registration in one transaction)."""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import models
from service import queue, registry
from service.artifacts import ArtifactStore
from service.domain import MAX_INT, Job, JobState, json_safe
from service.errors import NotFound, ServiceError
from service.jobs import record_state, to_job
from service.lora_path import LoraSource, SourceFile, resolve_source
from service.queue import Lease
from service.registry import AdapterResult, Checkpoint, FileRef
from service.settings import Settings

log = logging.getLogger(__name__)


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

    def files(self) -> list[SourceFile]:
        return [*self.datasets.values(), *(self.checkpoint.files if self.checkpoint else []),
                *(self.lora_source.files if self.lora_source else [])]


class Claim(Lease, JobInputs):
    """A lease plus the job's inputs."""


class CheckpointUpload(BaseModel):
    step: int = Field(ge=0, le=MAX_INT)
    files: list[FileRef] = Field(min_length=1, max_length=1000)


def claim(session: Session, settings: Settings, *, worker_id: str) -> Claim | None:
    """Claim the next job and gather its inputs. A job whose `lora_path` no longer resolves
    fails at once (a user error) and the next one is claimed."""
    while True:
        lease = queue.claim_next_job(session, worker_id=worker_id,
                                     lease_seconds=settings.lease_seconds)
        if lease is None:
            return None
        try:
            return _with_inputs(session, settings, lease)
        except ServiceError as exc:
            row = queue.fenced_row(session, lease.job.id, lease.lease_id)
            row.error = {"code": exc.code, "message": exc.message, "retryable": False}
            record_state(session, row, JobState.failed, code=exc.code, reason=exc.message[:500])
            session.flush()


def _with_inputs(session: Session, settings: Settings, lease: Lease) -> Claim:
    inputs = job_inputs(session, settings, lease.job)
    return Claim(**lease.model_dump(), **inputs.model_dump())


def input_url(job_id: str, sha256: str) -> str:
    return f"/worker/jobs/{job_id}/inputs/{sha256}"


def job_inputs(session: Session, settings: Settings, job: Job) -> JobInputs:
    """The resume checkpoint, the adapter to continue from, and the uploaded datasets."""
    latest = registry.latest_checkpoint(session, job.id)
    checkpoint = None
    if latest is not None:
        checkpoint = ResumePoint(
            checkpoint_id=latest.id,
            step=latest.step,
            files=[SourceFile(name=f.name, sha256=f.sha256, size=f.size,
                              url=input_url(job.id, f.sha256)) for f in latest.files],
        )
    lora_path = job.spec["actor"]["model"].get("lora_path")
    source = None
    if lora_path:
        source = resolve_source(session, lora_path, settings,
                                parent_adapter_id=job.parent_adapter_id)
        for f in source.files:
            f.url = input_url(job.id, f.sha256)
    data = job.spec["data"]
    datasets = {}
    for reference in [*data["train_data_paths"], *(data.get("val_data_paths") or [])]:
        if reference.startswith("ds_"):
            row = session.scalar(select(models.Dataset).where(
                models.Dataset.id == reference, models.Dataset.project == job.project))
            if row is None:
                raise NotFound(f"dataset {reference} is gone", code="dataset_not_found")
            datasets[reference] = SourceFile(name=f"{reference}.jsonl", sha256=row.sha256,
                                             size=row.size, url=input_url(job.id, row.sha256))
    return JobInputs(checkpoint=checkpoint, lora_source=source, datasets=datasets)


def input_blob(session: Session, settings: Settings, job_id: str, lease_id: str,
               sha256: str) -> int:
    """The size of an input blob of the job held under this lease; 404 for any other blob."""
    row = queue.fenced_row(session, job_id, lease_id)
    inputs = job_inputs(session, settings, to_job(row))
    for f in inputs.files():
        if f.sha256 == sha256:
            return f.size
    raise NotFound(f"{sha256} is not an input of job {job_id}")


def add_checkpoint(session: Session, store: ArtifactStore, job_id: str, lease_id: str,
                   upload: CheckpointUpload, *, base_url: str | None) -> Checkpoint:
    """Record a checkpoint whose files the worker uploaded under its lease."""
    row = queue.fenced_row(session, job_id, lease_id)
    return registry.record_checkpoint(session, row, step=upload.step, attempt=row.attempt,
                                      files=upload.files, store=store, base_url=base_url)


def complete(session: Session, store: ArtifactStore, settings: Settings, job_id: str,
             lease_id: str, result: AdapterResult, *, base_url: str | None) -> tuple[Job, list[str]]:
    """Mark the job succeeded and register its adapter, together; returns the job and the
    blobs that pruning freed (collect them after the commit). A job the user cancelled
    meanwhile ends `cancelled` and registers nothing."""
    row = queue.fenced_row(session, job_id, lease_id)
    if row.state == JobState.cancelling.value:
        record_state(session, row, JobState.cancelled, reason="cancelled by user")
        session.flush()
        return to_job(row), []
    result = result.model_copy(update={"metrics": json_safe(result.metrics)})
    adapter = registry.register_adapter(session, row, result, store=store, base_url=base_url)
    row.metrics = result.metrics or row.metrics
    row.error = None
    if row.progress_total:
        row.progress_step = row.progress_total
    record_state(session, row, JobState.succeeded, adapter_id=adapter.id)
    freed = registry.prune_checkpoints(session, job_id, settings.checkpoints_keep)
    session.flush()
    return to_job(row), freed
