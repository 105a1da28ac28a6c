"""The durable queue: claim under a lease, heartbeat, fenced writes, expiry, hand-back.

A claim is `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`. On PostgreSQL
its state event and the job's resume checkpoint are in the same statement (data-modifying
CTEs), which runs in autocommit: a claim is one round trip. On SQLite they are statements of
their own inside the `BEGIN IMMEDIATE` every transaction starts with (db/engine.py), so one
writer at a time. Every later write of a worker is fenced
on (job id, lease id, active state, lease not expired): a worker whose lease is gone changes
nothing and gets `LeaseLost` (HTTP 409).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    Integer,
    Row,
    bindparam,
    column,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from db import models
from db.base import UTCDateTime, utcnow
from service.errors import LeaseLost
from service.ids import new_id
from service.jobs import (
    cancel_if_requested,
    events_from,
    insert_event,
    record_state,
    to_job,
    word,
    write_state,
)
from service.registry.checkpoints import LATEST_CHECKPOINT, latest_of
from service.schemas import (
    ACTIVE_STATES,
    HeartbeatReply,
    Job,
    JobFailure,
    JobState,
    Lease,
    WorkerEvent,
    json_safe,
)

log = logging.getLogger(__name__)

ACTIVE = tuple(s.value for s in ACTIVE_STATES)


_JOBS = models.Job.__table__


def _claim_statement(skip_locked: bool) -> Any:
    """The claim, built once per dialect (its cache key is computed once: with the whole row in
    RETURNING, building it per call cost more than running it). A Core statement: the row
    comes back as columns, not as an ORM object (service/jobs.py, `write_state`)."""
    job = _JOBS.c
    pick = (
        select(job.id)
        .where(job.state == JobState.queued.value,
               or_(job.devices.is_(None), job.devices <= bindparam("offered_devices")))
        .order_by(job.priority.desc(), job.created_at, job.id)
        .limit(1)
    )
    if skip_locked:
        pick = pick.with_for_update(skip_locked=True)
    return (
        update(_JOBS)
        .where(job.id == pick.scalar_subquery(), job.state == JobState.queued.value)
        .values(
            state=JobState.running.value,
            attempt=job.attempt + 1,
            worker_id=bindparam("claiming_worker"),
            lease_id=bindparam("new_lease"),
            lease_expires_at=bindparam("new_expiry", type_=UTCDateTime()),
            updated_at=bindparam("claimed_at", type_=UTCDateTime()),
            started_at=func.coalesce(job.started_at,
                                     bindparam("claimed_at", type_=UTCDateTime())),
        )
        .returning(*_JOBS.c)
    )


# The fence of every worker write after the claim; built once, like the claim. `_FENCE`
# returns the row into the session (an ORM object), `_FENCE_ROW` as columns (the hot path).
_FENCED = (
    update(models.Job)
    .where(
        models.Job.id == bindparam("fenced_job"),
        models.Job.lease_id == bindparam("fence_lease"),
        models.Job.state.in_(ACTIVE),
        models.Job.lease_expires_at >= bindparam("fenced_at", type_=UTCDateTime()),
    )
    .values(updated_at=bindparam("fenced_at", type_=UTCDateTime()))
)
_FENCE = _FENCED.returning(models.Job)
# The whole row comes back from `_FENCE` (RETURNING) into the session: no read after it.
_RETURNING_ROWS = {"synchronize_session": False, "populate_existing": True}
_FENCE_ROW = _FENCED.returning(*_JOBS.c)
_HEARTBEAT = _FENCED.values(lease_expires_at=bindparam("renewed_until", type_=UTCDateTime())
                            ).returning(_JOBS.c.state)
_CLAIM = {skip_locked: _claim_statement(skip_locked) for skip_locked in (False, True)}


CHECKPOINT_PREFIX = "checkpoint_"


def _claim_in_one_statement() -> Any:
    """PostgreSQL: the claim, its state event and the claimed job's resume checkpoint (its
    columns prefixed `checkpoint_`, NULL for none) in one statement."""
    claimed = _CLAIM[True].cte("claimed")
    data = func.jsonb_build_object(
        word("from"), word(JobState.queued.value), word("to"), claimed.c.state,
        word("worker_id"), claimed.c.worker_id, word("attempt"), claimed.c.attempt)
    logged = events_from(select(claimed.c.id, word("state"), data,
                                bindparam("claimed_at", type_=UTCDateTime())))
    latest = latest_of(claimed.c.id).lateral("latest")
    return (
        select(claimed, *(c.label(f"{CHECKPOINT_PREFIX}{c.name}") for c in latest.c))
        .select_from(claimed.outerjoin(latest, true()))
        .add_cte(logged)
    )


_CLAIM_ONE_STATEMENT = _claim_in_one_statement()
_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


def _on_its_own(session: Session) -> Connection:
    """The connection for a change that is one statement: on PostgreSQL in autocommit (the
    statement its own transaction: no BEGIN or COMMIT round trip), so the session must be
    fresh; on SQLite the session's transaction, which the caller commits."""
    if session.get_bind().dialect.name == "postgresql":
        return session.connection(execution_options=_AUTOCOMMIT)
    return session.connection()


class Claimed(NamedTuple):
    row: Row  # the job's columns as the claim left them
    lease: Lease
    checkpoint: Row | SimpleNamespace | None  # its latest unpruned checkpoint, to resume from


def claim_next(session: Session, *, worker_id: str, lease_seconds: float,
               devices: int = 1) -> Claimed | None:
    """Claim the highest-priority, oldest queued job that fits `devices` (those the worker
    offers) for `worker_id`: its row (columns), lease and resume checkpoint, or None. The row
    comes back from the UPDATE (RETURNING): the claim's inputs are read from it.

    PostgreSQL: one statement with `FOR UPDATE SKIP LOCKED`, on a connection in autocommit
    (module doc), so the session must be fresh; its commit then has nothing left to send.
    SQLite: three statements under the `BEGIN IMMEDIATE` write lock, which the caller commits."""
    now = utcnow()
    lease_id = new_id("ls")
    expires = now + timedelta(seconds=lease_seconds)
    params = {"offered_devices": devices, "claiming_worker": worker_id, "new_lease": lease_id,
              "new_expiry": expires, "claimed_at": now}
    checkpoint: Row | SimpleNamespace | None
    if session.get_bind().dialect.name == "postgresql":
        row = _on_its_own(session).execute(_CLAIM_ONE_STATEMENT, params).one_or_none()
        if row is None:
            return None
        values = row._mapping
        checkpoint = None if values[f"{CHECKPOINT_PREFIX}id"] is None else SimpleNamespace(**{
            key.removeprefix(CHECKPOINT_PREFIX): value for key, value in values.items()
            if key.startswith(CHECKPOINT_PREFIX)})
    else:
        connection = session.connection()
        row = connection.execute(_CLAIM[False], params).one_or_none()
        if row is None:
            return None
        insert_event(session, row.id, "state", {"from": JobState.queued.value, "to": row.state,
                                                 "worker_id": worker_id, "attempt": row.attempt})
        checkpoint = connection.execute(LATEST_CHECKPOINT, {"of_job": row.id}).first()
    lease = Lease(job=to_job(row), lease_id=lease_id, lease_expires_at=expires,
                  lease_seconds=lease_seconds, heartbeat_seconds=max(lease_seconds / 3, 0.05))
    return Claimed(row, lease, checkpoint)


def _fence_params(job_id: str, lease_id: str) -> dict[str, Any]:
    return {"fenced_job": job_id, "fence_lease": lease_id, "fenced_at": utcnow()}


def _lease_lost(job_id: str, lease_id: str) -> LeaseLost:
    return LeaseLost(f"lease {lease_id} no longer holds job {job_id}; abandon it")


def fenced_row(session: Session, job_id: str, lease_id: str) -> models.Job:
    """The job row, locked, if `lease_id` is its current, unexpired lease; else LeaseLost.
    The fence (a row lock) and the row's read are one statement."""
    row = session.scalars(_FENCE, _fence_params(job_id, lease_id),
                          execution_options=_RETURNING_ROWS).one_or_none()
    if row is None:
        raise _lease_lost(job_id, lease_id)
    return row


def fenced_columns(session: Session, job_id: str, lease_id: str) -> Row:
    """`fenced_row` as columns, for a change written with Core statements (`write_state`)."""
    row = session.connection().execute(_FENCE_ROW, _fence_params(job_id, lease_id)).one_or_none()
    if row is None:
        raise _lease_lost(job_id, lease_id)
    return row


def heartbeat(session: Session, job_id: str, lease_id: str, *, lease_seconds: float) -> HeartbeatReply:
    """Extend the lease, in a fresh session (the fence and the renewal are one statement, on
    its own: `_on_its_own`); tell the worker whether the user asked to cancel."""
    params = _fence_params(job_id, lease_id)
    until = params["fenced_at"] + timedelta(seconds=lease_seconds)
    state = _on_its_own(session).execute(_HEARTBEAT, {**params, "renewed_until": until}
                                         ).scalar_one_or_none()
    if state is None:
        raise _lease_lost(job_id, lease_id)
    return HeartbeatReply(lease_expires_at=until, cancel_requested=state == JobState.cancelling.value)


# A report's metrics: None is SQL NULL here (COALESCE keeps the column), not JSON `null`.
_JSON_OR_NULL = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def _report_statements() -> tuple[Any, Any]:
    """The fence with the progress and metrics a report sets (a NULL parameter keeps the
    column), and on PostgreSQL that statement with the report's events inserted by it too
    (from one JSON array, in order): a report is one round trip there."""
    job = _JOBS.c
    fenced = _FENCED.values(
        progress_step=func.coalesce(bindparam("reported_step", type_=Integer()), job.progress_step),
        progress_total=func.coalesce(bindparam("reported_total", type_=Integer()),
                                     job.progress_total),
        metrics=func.coalesce(bindparam("reported_metrics", type_=_JSON_OR_NULL), job.metrics),
    ).returning(job.id)
    reported = fenced.cte("reported")
    events = func.jsonb_array_elements(bindparam("reported_events", type_=JSONB())).table_valued(
        column("value", JSONB()), with_ordinality="n").render_derived(name="event")
    logged = events_from(
        select(reported.c.id, events.c.value["kind"].astext, events.c.value["data"],
               bindparam("fenced_at", type_=UTCDateTime()))
        .select_from(reported.join(events, true())).order_by(events.c.n))
    return fenced, select(reported.c.id).add_cte(logged)


_REPORT, _REPORT_ONE_STATEMENT = _report_statements()


def report(
    session: Session,
    job_id: str,
    lease_id: str,
    *,
    events: list[WorkerEvent],
    step: int | None = None,
    total: int | None = None,
    metrics: dict[str, Any] | None = None,
) -> None:
    """Store a worker's log lines and metrics, and its progress, in a fresh session: on
    PostgreSQL one statement in autocommit (`_report_statements`), on SQLite the fenced update
    and the events' insert in the caller's transaction."""
    params = {**_fence_params(job_id, lease_id), "reported_step": step, "reported_total": total,
              "reported_metrics": None if metrics is None else json_safe(metrics)}
    rows = [{"kind": event.kind, "data": json_safe(event.data)} for event in events]
    if session.get_bind().dialect.name == "postgresql":
        reported = _on_its_own(session).execute(
            _REPORT_ONE_STATEMENT, {**params, "reported_events": rows}).first()
        if reported is None:
            raise _lease_lost(job_id, lease_id)
        return
    if session.connection().execute(_REPORT, params).first() is None:
        raise _lease_lost(job_id, lease_id)
    for row in rows:
        insert_event(session, job_id, row["kind"], row["data"])


def fail(session: Session, job_id: str, lease_id: str, failure: JobFailure) -> Job:
    """A failed attempt: retried if the error is a system error and attempts remain; the user's
    cancel wins over the failure. A finish of the hot path: Core statements (`write_state`)."""
    row = fenced_columns(session, job_id, lease_id)
    error = failure.model_dump()
    if row.state == JobState.cancelling.value:
        return write_state(session, row, JobState.cancelled, {"error": error},
                           reason="cancelled while failing")
    if failure.retryable and row.attempt < row.max_attempts:
        return write_state(session, row, JobState.queued, {"error": error, **_UNLEASED},
                           reason=f"attempt {row.attempt} failed: {failure.code}")
    return write_state(session, row, JobState.failed, {"error": error}, code=failure.code,
                       reason=failure.message[:500])


def release(session: Session, job_id: str, lease_id: str, *, reason: str) -> Job:
    """A worker hands a job back (e.g. on SIGTERM) after checkpointing: no attempt is spent."""
    row = fenced_row(session, job_id, lease_id)
    if not cancel_if_requested(session, row, "cancelled"):
        row.attempt = max(row.attempt - 1, 0)
        _requeue(session, row, reason=reason)
    session.flush()
    return to_job(row)


def acknowledge_cancel(session: Session, job_id: str, lease_id: str) -> Job:
    """The worker stopped a job the user cancelled."""
    row = fenced_row(session, job_id, lease_id)
    record_state(session, row, JobState.cancelled, reason="cancelled by user")
    session.flush()
    return to_job(row)


_UNLEASED = {"worker_id": None, "lease_id": None, "lease_expires_at": None}


def _requeue(session: Session, row: models.Job, *, reason: str) -> None:
    for name, value in _UNLEASED.items():
        setattr(row, name, value)
    record_state(session, row, JobState.queued, reason=reason)


def expire_leases(session: Session) -> int:
    """Send jobs whose lease ran out back to the queue (or fail / cancel them); returns count."""
    now = utcnow()
    stmt = (
        select(models.Job)
        .where(models.Job.state.in_(ACTIVE), models.Job.lease_expires_at < now)
        .limit(100)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(session.scalars(stmt))
    for row in rows:
        worker = row.worker_id
        if cancel_if_requested(session, row, "worker lost while cancelling"):
            pass  # nothing to retry: the user's cancel is done
        elif row.attempt >= row.max_attempts:
            row.error = {
                "code": "worker_lost",
                "message": f"the worker ({worker}) stopped heartbeating on the last of "
                f"{row.max_attempts} attempts",
                "retryable": False,
            }
            record_state(session, row, JobState.failed, code="worker_lost")
        else:
            row.error = {"code": "worker_lost",
                         "message": f"lease expired; worker {worker} stopped heartbeating",
                         "retryable": True}
            _requeue(session, row, reason=f"lease of worker {worker} expired")
        log.warning("job %s: lease of %s expired (attempt %s)", row.id, worker, row.attempt)
    session.flush()
    return len(rows)
