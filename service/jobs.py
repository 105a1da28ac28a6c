"""Job intake and reads: submit, list, get, cancel, events. Functions flush, routes commit."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CTE,
    Row,
    Select,
    String,
    bindparam,
    insert,
    literal_column,
    null,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db import models
from db.base import JSONType, UTCDateTime, utcnow
from db.scoping import project_for_new_rows
from service.errors import Conflict, NotFound
from service.ids import new_id
from service.media import normalise_media_type
from service.paging import newest_first
from service.schemas import (
    TERMINAL_STATES,
    TRANSITIONS,
    Job,
    JobEvent,
    JobKind,
    JobState,
    Page,
    Progress,
    from_row,
)
from service.schemas.webhooks import WebhookEvent
from service.spec import ParsedSpec
from service.webhooks.outbox import enqueue, subscriptions_where

if TYPE_CHECKING:  # service.lora_path reads the registry, which reads jobs
    from service.lora_path import ResolvedLora


JOB_EVENTS = {JobState.succeeded: WebhookEvent.job_succeeded,
              JobState.failed: WebhookEvent.job_failed,
              JobState.cancelled: WebhookEvent.job_cancelled}


def to_job(row: models.Job | Row | SimpleNamespace) -> Job:
    """The public view of a job row (an ORM object, or a row read by a Core statement)."""
    return from_row(Job, row, progress=Progress(step=row.progress_step, total=row.progress_total))


def request_hash(body: bytes, content_type: str | None) -> str:
    media = normalise_media_type(content_type)
    return hashlib.sha256(media.encode() + b"\0" + body).hexdigest()


def add_event(session: Session, job_id: str, kind: str, data: dict[str, Any]) -> None:
    session.add(models.JobEvent(job_id=job_id, kind=kind, data=data, created_at=utcnow()))


def transition(job_id: str, old: str, new: JobState) -> dict[str, Any]:
    """The columns a move from `old` to `new` sets; 409 unless TRANSITIONS allows it."""
    if new not in TRANSITIONS[JobState(old)]:
        raise Conflict(f"job {job_id} cannot move from {old} to {new.value}",
                       code="invalid_transition")
    now = utcnow()
    values: dict[str, Any] = {"state": new.value, "updated_at": now}
    if new in TERMINAL_STATES:
        values.update(finished_at=now, lease_id=None, lease_expires_at=None)
    return values


def record_state(session: Session, row: models.Job, new: JobState, **detail: Any) -> None:
    """Move a job to a new state (one that TRANSITIONS allows) and log the change as an event."""
    old = row.state
    for column, value in transition(row.id, old, new).items():
        setattr(row, column, value)
    add_event(session, row.id, "state", {"from": old, "to": new.value, **detail})
    _notify(session, row.project, new, lambda: to_job(row))


def _notify(session: Session, project: str, new: JobState, view: Callable[[], Job],
            subscriptions: Sequence[Row] | None = None) -> None:
    if new in JOB_EVENTS:  # webhooks: the outbox row commits with the state change
        enqueue(session, project=project, event=JOB_EVENTS[new],
                data=lambda: view().model_dump(mode="json"), subscriptions=subscriptions)


# The worker protocol's frequent state changes (a claim, a finish) are written with Core
# statements built once, on rows read by Core statements: no ORM object or unit of work on
# the hot path (BENCHMARKS.md, claim throughput). The columns such a change can write:
_JOBS = models.Job.__table__
STATE_COLUMNS = ("state", "updated_at", "finished_at", "worker_id", "lease_id",
                 "lease_expires_at", "error", "attempt")
_SET_STATE = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("changed_job"))
    .values({name: bindparam(f"new_{name}", type_=_JOBS.c[name].type) for name in STATE_COLUMNS})
)
_ADD_EVENT = insert(models.JobEvent.__table__)


def word(text: str) -> Any:
    """`text` as a constant of a statement (an SQL literal), not a bound parameter."""
    return literal_column(f"'{text}'")


def events_from(rows: Select) -> CTE:
    """PostgreSQL: a CTE that inserts the events `rows` yields, as (job_id, kind, data,
    created_at), into the statement it joins (a claim, a report, a state change)."""
    return _ADD_EVENT.from_select(["job_id", "kind", "data", "created_at"], rows).cte("logged")


def _state_change_in_one_statement() -> Select:
    """PostgreSQL: `_SET_STATE`, the change's event inserted by it, and the job's project's
    webhook subscriptions read by it (for the outbox), in one statement."""
    changed = _SET_STATE.returning(_JOBS.c.project).cte("changed")
    logged = events_from(select(
        bindparam("changed_job", type_=String()), word("state"),
        bindparam("event_data", type_=JSONType), bindparam("event_at", type_=UTCDateTime()),
    ).select_from(changed))
    return subscriptions_where(models.Webhook.project.in_(select(changed.c.project))
                               ).add_cte(logged)


_SET_STATE_ONE_STATEMENT = _state_change_in_one_statement()


def insert_event(session: Session, job_id: str, kind: str, data: dict[str, Any]) -> None:
    """`add_event` as a statement of its own, sent now (for rows written without the ORM)."""
    session.connection().execute(_ADD_EVENT, {"job_id": job_id, "kind": kind, "data": data,
                                              "created_at": utcnow()})


def write_state(session: Session, row: Row, new: JobState, changes: dict[str, Any] | None = None,
                **detail: Any) -> Job:
    """`record_state` for a row read by a Core statement, which the caller holds locked (the
    lease fence): the state columns, with `changes` (of STATE_COLUMNS) beside the move, in
    one UPDATE; its event; its webhook messages. Returns the job as it now is."""
    values = {**row._mapping, **(changes or {}), **transition(row.id, row.state, new)}
    params = {"changed_job": row.id, **{f"new_{c}": values[c] for c in STATE_COLUMNS}}
    event = {"from": row.state, "to": new.value, **detail}
    connection = session.connection()
    subscriptions = None
    if connection.dialect.name == "postgresql":  # one round trip (`_state_change_in_...`)
        subscriptions = connection.execute(_SET_STATE_ONE_STATEMENT, {
            **params, "event_data": event, "event_at": values["updated_at"]}).all()
    else:
        connection.execute(_SET_STATE, params)
        insert_event(session, row.id, "state", event)
    job = to_job(SimpleNamespace(**values))
    _notify(session, row.project, new, lambda: job, subscriptions)
    return job


def cancel_if_requested(session: Session, row: models.Job, reason: str) -> bool:
    """A job the user asked to cancel ends `cancelled`, whatever its worker reports instead;
    True if it did."""
    if row.state != JobState.cancelling.value:
        return False
    record_state(session, row, JobState.cancelled, reason=reason)
    return True


def stored_idempotency_key(session: Session, key: str) -> str:
    """Idempotency keys belong to a project: stored as `{project}/{sha256(key)}`, so the same
    key in another project neither collides with nor reveals this one (the column is unique
    across projects)."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{project_for_new_rows(session)}/{digest}"


def find_by_idempotency_key(session: Session, key: str, digest: str) -> Job | None:
    stored = stored_idempotency_key(session, key)
    row = session.scalar(select(models.Job).where(models.Job.idempotency_key == stored))
    if row is None:
        return None
    if row.request_hash != digest:
        raise Conflict(
            f"Idempotency-Key {key!r} was already used with a different request body "
            f"(job {row.id})",
            code="idempotency_conflict",
        )
    return to_job(row)


def submit_job(
    session: Session,
    parsed: ParsedSpec,
    *,
    max_attempts: int,
    idempotency_key: str | None = None,
    digest: str | None = None,
    lora: ResolvedLora | None = None,
    kind: JobKind = JobKind.training,
    task: dict[str, Any] | None = None,
) -> Job:
    """Queue a validated spec as a new job, with what its lora_path resolved to; an
    evaluation or a sample job also keeps its `task` as submitted (service/tasks.py)."""
    spec = parsed.spec
    now = utcnow()
    row = models.Job(
        id=new_id("job"),
        name=spec.name,
        state=JobState.queued.value,
        priority=spec.priority,
        spec=spec.model_dump(mode="json"),
        ignored_keys=parsed.ignored_keys,
        idempotency_key=(
            stored_idempotency_key(session, idempotency_key) if idempotency_key else None
        ),
        request_hash=digest,
        attempt=0,
        max_attempts=max_attempts,
        progress_step=0,
        lora_source_kind=lora.kind if lora else None,
        parent_adapter_id=lora.parent_adapter_id if lora else None,
        source_checkpoint_id=lora.checkpoint_id if lora else None,
        lora_local_path=lora.local_path if lora else None,
        kind=kind.value,
        task=task,
        # NULL (`all`) written as such: a plain None would let the column's default (1) in.
        devices=null() if spec.cluster.actor_devices is None else spec.cluster.actor_devices,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    add_event(session, row.id, "state", {"from": None, "to": JobState.queued.value})
    try:
        session.flush()
    except IntegrityError:
        # Lost a race on the same Idempotency-Key: the caller rolls back and replays.
        raise Conflict("concurrent request with the same Idempotency-Key", code="idempotency_race")
    return to_job(row)


def job_row(session: Session, job_id: str, *, for_update: bool = False) -> models.Job:
    stmt = select(models.Job).where(models.Job.id == job_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalar(stmt)
    if row is None:
        raise NotFound(f"no job {job_id!r}")
    return row


def get_job(session: Session, job_id: str) -> Job:
    return to_job(job_row(session, job_id))


def list_jobs(session: Session, *, state: JobState | None, limit: int, cursor: str | None) -> Page[Job]:
    """Newest first; the cursor is keyed on the (time-ordered) id, so pages never repeat."""
    stmt = select(models.Job)
    if state is not None:
        stmt = stmt.where(models.Job.state == state.value)
    rows, next_cursor = newest_first(session, stmt, models.Job.id, limit=limit, cursor=cursor)
    return Page[Job](items=[to_job(r) for r in rows], next_cursor=next_cursor)


def cancel_job(session: Session, job_id: str) -> Job:
    """Queued: cancelled at once. Running: `cancelling` until the worker stops it."""
    row = job_row(session, job_id, for_update=True)
    state = JobState(row.state)
    if state is JobState.queued:
        record_state(session, row, JobState.cancelled, reason="cancelled by user")
    elif state is JobState.running:
        record_state(session, row, JobState.cancelling, reason="cancel requested")
    elif state in TERMINAL_STATES:
        raise Conflict(f"job {job_id} already ended ({state.value}); nothing to cancel",
                       code="job_finished")
    session.flush()
    return to_job(row)


def list_events(session: Session, job_id: str, *, after: int, limit: int) -> list[JobEvent]:
    """Events of one job with id > after, oldest first."""
    job_row(session, job_id)
    rows = session.scalars(
        select(models.JobEvent)
        .where(models.JobEvent.job_id == job_id, models.JobEvent.id > after)
        .order_by(models.JobEvent.id)
        .limit(limit)
    )
    return [
        JobEvent(id=r.id, job_id=r.job_id, kind=r.kind, data=r.data, created_at=r.created_at)
        for r in rows
    ]
