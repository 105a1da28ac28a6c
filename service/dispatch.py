"""The worker protocol's steps that span the queue and the registry: claim with inputs,
checkpoints, and completion (success and registration in one transaction)."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from service import queue
from service.artifacts import ArtifactStore
from service.errors import ServiceError
from service.inputs import claim_inputs, input_size
from service.jobs import cancel_if_requested, record_state, to_job
from service.registry.checkpoints import prune_checkpoints, record_checkpoint, to_checkpoint
from service.registry.register import register_adapter
from service.schemas import (
    AdapterResult,
    Checkpoint,
    CheckpointUpload,
    Claim,
    Job,
    JobState,
    json_safe,
)
from service.settings import Settings

log = logging.getLogger(__name__)


def claim(session: Session, settings: Settings, *, worker_id: str,
          devices: int = 1) -> Claim | None:
    """Claim the next job that fits the worker's `devices` and gather its inputs, in a fresh
    session. The claim commits on its own (service/queue.py); a job whose `lora_path` no
    longer resolves then fails (a user error) in a transaction of its own, and the next one is
    claimed."""
    while True:
        claimed = queue.claim_next(session, worker_id=worker_id,
                                   lease_seconds=settings.lease_seconds, devices=devices)
        session.commit()
        if claimed is None:
            return None
        row, lease, checkpoint = claimed
        latest = None if checkpoint is None else to_checkpoint(checkpoint, row, None)
        try:
            # The fields as they are (dict(model)), not dumped and validated again.
            return Claim(**dict(lease), **dict(claim_inputs(session, row, latest)))
        except ServiceError as exc:
            session.rollback()
            failed = queue.fenced_row(session, lease.job.id, lease.lease_id)
            failed.error = {"code": exc.code, "message": exc.message, "retryable": False}
            record_state(session, failed, JobState.failed, code=exc.code,
                         reason=exc.message[:500])
            session.commit()


def input_blob(session: Session, job_id: str, lease_id: str, sha256: str) -> int:
    """The size of an input blob of the job held under this lease; 404 for any other blob."""
    return input_size(session, queue.fenced_row(session, job_id, lease_id), sha256)


def add_checkpoint(session: Session, store: ArtifactStore, job_id: str, lease_id: str,
                   upload: CheckpointUpload, *, base_url: str | None) -> Checkpoint:
    """Record a checkpoint whose files the worker uploaded under its lease."""
    row = queue.fenced_row(session, job_id, lease_id)
    return record_checkpoint(session, row, step=upload.step, attempt=row.attempt,
                                      files=upload.files, store=store, base_url=base_url)


def complete(session: Session, store: ArtifactStore, settings: Settings, job_id: str,
             lease_id: str, result: AdapterResult, *, base_url: str | None) -> tuple[Job, list[str]]:
    """Mark the job succeeded and register its adapter, together; returns the job and the
    blobs that pruning freed (collect them after the commit). A job the user cancelled
    meanwhile ends `cancelled` and registers nothing."""
    row = queue.fenced_row(session, job_id, lease_id)
    if cancel_if_requested(session, row, "cancelled by user"):
        session.flush()
        return to_job(row), []
    result = result.model_copy(update={"metrics": json_safe(result.metrics)})
    adapter = register_adapter(session, row, result, store=store, base_url=base_url)
    row.metrics = result.metrics or row.metrics
    row.error = None
    if row.progress_total:
        row.progress_step = row.progress_total
    record_state(session, row, JobState.succeeded, adapter_id=adapter.id)
    freed = prune_checkpoints(session, job_id, settings.checkpoints_keep)
    session.flush()
    return to_job(row), freed
