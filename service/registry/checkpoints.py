"""Checkpoints a job saved: record, read, list, and prune when the job ends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from db import models
from db.base import utcnow
from service.artifacts import ArtifactStore
from service.errors import InvalidArtifact, InvalidRequest, NotFound
from service.ids import new_id
from service.jobs import job_row
from service.paging import decode_cursor, encode_cursor
from service.registry.blobs import referenced_blobs
from service.registry.files import (
    ADAPTER_CONFIG,
    check_files,
    config_rank_of,
    peft_pair,
    read_json_blob,
)
from service.registry.job_output import HOLDING_STATES, job_kind
from service.registry.urls import checkpoint_lora_path
from service.schemas import MAX_INT, Checkpoint, FileRef, Page, from_row


def to_checkpoint(row: models.Checkpoint | Row, job: models.Job | Row,
                   base_url: str | None) -> Checkpoint:
    files = [FileRef.model_validate(f) for f in row.files]
    kind = job_kind(job)
    resumable = kind == "lora" and peft_pair(files) is not None
    return from_row(
        Checkpoint,
        row,
        kind=kind,
        files=files,
        lora_path=checkpoint_lora_path(row.job_id, row.id, base_url) if resumable else None,
    )


def record_checkpoint(
    session: Session,
    job: models.Job,
    *,
    step: int,
    attempt: int,
    files: Sequence[FileRef],
    store: ArtifactStore,
    base_url: str | None = None,
) -> Checkpoint:
    """Record a checkpoint whose files are stored; the same (job, step) again returns it.

    Saved again with other files (a later attempt redid the step), the row takes the new
    files; the old ones' blobs are left for a later collection.
    """
    if step < 0:
        raise InvalidArtifact(f"checkpoint step must be >= 0, got {step}")
    refs = check_files(store, files)
    pair = peft_pair(refs) if job_kind(job) == "lora" else None
    if pair is not None:  # a later lora_path may continue from it: its config must say r
        config = pair[ADAPTER_CONFIG]
        config_rank_of(read_json_blob(store, config), config.name)
    payload = [ref.model_dump() for ref in refs]
    size = sum(ref.size for ref in refs)
    # Serialise writers of this job's checkpoints (the caller usually holds the lock already).
    session.execute(select(models.Job.id).where(models.Job.id == job.id).with_for_update())
    row = session.scalar(
        select(models.Checkpoint)
        .where(models.Checkpoint.job_id == job.id, models.Checkpoint.step == step)
        .order_by(models.Checkpoint.created_at.desc())
        .limit(1)
    )
    if row is None:
        row = models.Checkpoint(
            id=new_id("ck"),
            project=job.project,
            job_id=job.id,
            step=step,
            attempt=attempt,
            size=size,
            files=payload,
            pruned=False,
            created_at=utcnow(),
        )
        session.add(row)
    elif row.files != payload or row.pruned:
        row.files, row.size, row.attempt, row.pruned = payload, size, attempt, False
    session.flush()
    return to_checkpoint(row, job, base_url)


_CHECKPOINTS = models.Checkpoint.__table__


def latest_of(job_id: Any) -> Select:
    """The unpruned checkpoint with the highest step of the job `job_id` names (a bound
    parameter, or a column of a claim's statement: service/queue.py), as columns."""
    return (
        select(*_CHECKPOINTS.c)
        .where(_CHECKPOINTS.c.job_id == job_id, _CHECKPOINTS.c.pruned.is_(False))
        .order_by(_CHECKPOINTS.c.step.desc())
        .limit(1)
    )


# Built once and read as columns: every claim asks (the job was found, in its project, first).
LATEST_CHECKPOINT = latest_of(bindparam("of_job"))


def latest_checkpoint(
    session: Session, job_id: str, *, base_url: str | None = None,
    job: models.Job | Row | None = None
) -> Checkpoint | None:
    """The job's unpruned checkpoint with the highest step, if any; `job`: its row, when the
    caller holds it already (a claim), so it is not read again."""
    job = job if job is not None else job_row(session, job_id)
    row = session.connection().execute(LATEST_CHECKPOINT, {"of_job": job_id}).first()
    return None if row is None else to_checkpoint(row, job, base_url)


def list_checkpoints(
    session: Session,
    job_id: str,
    *,
    limit: int = 100,
    cursor: str | None = None,
    base_url: str | None = None,
) -> Page[Checkpoint]:
    """The job's unpruned checkpoints, by step."""
    job = job_row(session, job_id)
    stmt = (
        select(models.Checkpoint)
        .where(models.Checkpoint.job_id == job_id, models.Checkpoint.pruned.is_(False))
        .order_by(models.Checkpoint.step)
        .limit(limit + 1)
    )
    if cursor:
        after = decode_cursor(cursor)
        if not isinstance(after, int) or not -MAX_INT - 1 <= after <= MAX_INT:  # `step` is INTEGER
            raise InvalidRequest("cursor is not one this service issued", code="invalid_cursor")
        stmt = stmt.where(models.Checkpoint.step > after)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[Checkpoint](
        items=[to_checkpoint(r, job, base_url) for r in rows],
        next_cursor=encode_cursor(rows[-1].step) if more and rows else None,
    )


def checkpoint_row(
    session: Session, checkpoint_id: str, *, job_id: str | None = None
) -> models.Checkpoint:
    """An unpruned checkpoint (of that job, when given); 404 otherwise."""
    row = session.get(models.Checkpoint, checkpoint_id)
    if row is None or (job_id is not None and row.job_id != job_id):
        where = f" of job {job_id!r}" if job_id else ""
        raise NotFound(f"no checkpoint {checkpoint_id!r}{where}")
    if row.pruned:
        raise NotFound(f"checkpoint {checkpoint_id} (step {row.step}) was pruned")
    return row


def job_checkpoint(
    session: Session, job_id: str, checkpoint_id: str
) -> tuple[models.Job, models.Checkpoint]:
    """A job and one of its unpruned checkpoints; 404 naming whichever is missing."""
    return job_row(session, job_id), checkpoint_row(session, checkpoint_id, job_id=job_id)


def get_checkpoint(
    session: Session, job_id: str, checkpoint_id: str, *, base_url: str | None = None
) -> Checkpoint:
    """One checkpoint of a job."""
    job, row = job_checkpoint(session, job_id, checkpoint_id)
    return to_checkpoint(row, job, base_url)


def checkpoint_file(session: Session, job_id: str, checkpoint_id: str, name: str) -> FileRef:
    """One file of a checkpoint; 404 naming the files it has."""
    _, row = job_checkpoint(session, job_id, checkpoint_id)
    for f in row.files:
        if f["name"] == name:
            return FileRef.model_validate(f)
    raise NotFound(
        f"checkpoint {checkpoint_id} has no file {name!r}; it has {[f['name'] for f in row.files]}"
    )


def prune_checkpoints(session: Session, job_id: str, keep: int) -> list[str]:
    """Mark all but the newest `keep` checkpoints pruned; returns blobs that may be garbage.

    A checkpoint a queued or running job continues from is kept whatever its age.
    """
    rows = list(
        session.scalars(
            select(models.Checkpoint)
            .where(models.Checkpoint.job_id == job_id, models.Checkpoint.pruned.is_(False))
            .order_by(models.Checkpoint.step.desc())
        )
    )
    doomed = rows[max(keep, 0) :]
    if not doomed:
        return []
    held = set(
        session.scalars(
            select(models.Job.source_checkpoint_id)
            .where(
                models.Job.state.in_(HOLDING_STATES),
                models.Job.source_checkpoint_id.in_([r.id for r in doomed]),
            )
            .execution_options(unscoped=True)
        )
    )
    candidates: set[str] = set()
    for row in doomed:
        if row.id in held:
            continue
        row.pruned = True
        candidates |= {f["sha256"] for f in row.files}
    session.flush()
    return sorted(candidates - referenced_blobs(session, candidates))
