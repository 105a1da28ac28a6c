"""`/jobs`: submit, list, read, cancel, and follow events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.deps import CursorQuery, LimitQuery, PrincipalDep, SessionDep, StateDep, require
from api.errors import AUTH_ERRORS, problems
from service import jobs as job_service
from service.errors import Conflict, InvalidRequest
from service.paging import decode_cursor, encode_cursor
from service.registry import serving
from service.schemas import MAX_BIGINT, TERMINAL_STATES, Job, JobEvent, JobState, Page, Role
from service.spec import JSON_TYPES, YAML_TYPES, JobSpec, parse_body

router = APIRouter(prefix="/jobs", tags=["jobs"], dependencies=[require(Role.admin, Role.user)],
                   responses=AUTH_ERRORS)

ERRORS = problems({404: "No such job", 409: "Conflict", 422: "Invalid input"})
_SPEC_BODY = {
    "requestBody": {
        "required": True,
        "description": "An RLinf-style job spec, as JSON or YAML.",
        "content": {
            **{t: {"schema": {"$ref": "#/components/schemas/JobSpec"}} for t in sorted(JSON_TYPES)},
            **{t: {"schema": {"type": "string"}} for t in sorted(YAML_TYPES)},
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=Job,
    operation_id="submit_job",
    summary="Submit a training job",
    openapi_extra=_SPEC_BODY,
    responses={**ERRORS, **problems({413: None, 415: None})},
)
async def submit_job(
    request: Request,
    response: Response,
    state: StateDep,
    principal: PrincipalDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Job:
    settings = state.settings
    body = await request.body()  # the gate has bounded it to max_spec_bytes
    content_type = request.headers.get("content-type")
    digest = job_service.request_hash(body, content_type)

    def submit() -> tuple[Job, bool]:
        from service import datasets as dataset_service
        from service import lora_path as lora_path_service

        parsed = parse_body(body, content_type, settings.max_spec_bytes)
        for _ in range(2):
            with state.session(principal.project) as session:
                if idempotency_key:
                    existing = job_service.find_by_idempotency_key(session, idempotency_key, digest)
                    if existing is not None:
                        return _warned(session, parsed.spec, existing), True
                try:
                    # Registry and dataset references are checked in the submitting
                    # transaction (the adapter stays share-locked until commit).
                    lora = lora_path_service.resolve_for_submit(session, parsed.spec, settings)
                    dataset_service.check_data_paths(session, parsed.spec,
                                                     settings.data_path_roots, state.store)
                    job = job_service.submit_job(
                        session, parsed, max_attempts=settings.max_attempts,
                        idempotency_key=idempotency_key, digest=digest,
                        lora=lora,
                    )
                except Conflict as exc:
                    if exc.code != "idempotency_race":
                        raise
                    continue
                warned = _warned(session, parsed.spec, job)
                session.commit()
                return warned, False
        raise Conflict("could not settle concurrent requests with one Idempotency-Key")

    job, replayed = await run_in_threadpool(submit)
    if not replayed:
        state.new_work.notify(job.devices)
    response.headers["Location"] = f"/jobs/{job.id}"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return job


def _warned(session: Session, spec: JobSpec, job: Job) -> Job:
    """The job with what about its adapter an engine would refuse (said, never stored)."""
    warnings = serving.submit_warnings(spec)
    if job.parent_adapter_id:
        warnings += serving.continued_adapter_warnings(session, job.parent_adapter_id)
    return job.model_copy(update={"warnings": warnings})


@router.get("", response_model=Page[Job], operation_id="list_jobs",
            summary="List jobs; with Accept: text/event-stream, follow the list live",
            description="As a stream: a `job` event with each job of the page, then one "
            "whenever a job of the page changes (state, progress, metrics) or enters it, and "
            "`gone` (`{\"id\": …}`) when one leaves it (its state no longer matches `state`).",
            responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}})
async def list_jobs(
    request: Request,
    app_state: StateDep,
    principal: PrincipalDep,
    state: JobState | None = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[Job] | StreamingResponse:
    def read() -> Page[Job]:
        with app_state.session(principal.project, read=True) as session:
            return job_service.list_jobs(session, state=state, limit=limit, cursor=cursor)

    page = await run_in_threadpool(read)
    if "text/event-stream" not in request.headers.get("accept", ""):
        return page

    async def stream() -> AsyncIterator[str]:
        """The page, then every change to it: `job` (a job entered the page or changed: its
        state, progress, metrics) and `gone` (it left the page, e.g. its state no longer
        matches the filter), compared snapshot to snapshot each poll."""
        nonlocal page
        sent: dict[str, str] = {}
        idle = 0.0
        while True:
            current = {job.id: job.model_dump_json() for job in page.items}
            changed = False
            for job_id, payload in current.items():
                if sent.get(job_id) != payload:
                    changed = True
                    yield f"event: job\ndata: {payload}\n\n"
            for job_id in sent.keys() - current.keys():
                changed = True
                yield f'event: gone\ndata: {{"id": "{job_id}"}}\n\n'
            sent = current
            if await request.is_disconnected():
                return
            await asyncio.sleep(app_state.settings.queue_poll_seconds)
            idle = 0.0 if changed else idle + app_state.settings.queue_poll_seconds
            if idle >= 15:
                idle = 0.0
                yield ": keep-alive\n\n"
            page = await run_in_threadpool(read)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


@router.get("/{job_id}", response_model=Job, operation_id="get_job", summary="Get a job",
            responses=ERRORS)
def get_job(job_id: str, session: SessionDep) -> Job:
    return job_service.get_job(session, job_id)


@router.post("/{job_id}/cancel", response_model=Job, operation_id="cancel_job",
             summary="Cancel a job", responses=ERRORS)
def cancel_job(job_id: str, session: SessionDep) -> Job:
    job = job_service.cancel_job(session, job_id)
    session.commit()
    return job


def _after(cursor: str | None, last_event_id: str | None) -> int:
    if last_event_id and last_event_id.isdigit():
        if int(last_event_id) > MAX_BIGINT:  # not an id this service gave out
            raise InvalidRequest("Last-Event-ID is not an event id of this service",
                                 code="invalid_last_event_id")
        return int(last_event_id)
    if not cursor:
        return 0
    value = decode_cursor(cursor)
    if not isinstance(value, int):
        raise InvalidRequest("cursor is not one this service issued", code="invalid_cursor")
    return value


@router.get(
    "/{job_id}/events",
    response_model=Page[JobEvent],
    operation_id="list_job_events",
    summary="List a job's events; with Accept: text/event-stream, follow them live",
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}},
)
async def job_events(
    job_id: str,
    request: Request,
    state: StateDep,
    principal: PrincipalDep,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Page[JobEvent] | StreamingResponse:
    after = _after(cursor, last_event_id)

    def read(after_id: int) -> tuple[list[JobEvent], bool]:
        with state.session(principal.project, read=True) as session:
            # The state first: a job seen ended already wrote all its events.
            ended = job_service.job_row(session, job_id).state in TERMINAL_STATES
            events = job_service.list_events(session, job_id, after=after_id, limit=limit)
            return events, ended

    events, ended = await run_in_threadpool(read, after)
    if "text/event-stream" not in request.headers.get("accept", ""):
        next_cursor = encode_cursor(events[-1].id) if len(events) == limit else None
        return Page[JobEvent](items=events, next_cursor=next_cursor)

    async def stream() -> AsyncIterator[str]:
        nonlocal events, ended
        last, idle = after, 0.0
        while True:
            for event in events:
                last = event.id
                payload = event.model_dump_json()
                yield f"id: {event.id}\nevent: {event.kind}\ndata: {payload}\n\n"
            if ended and len(events) < limit:
                yield "event: end\ndata: {}\n\n"
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(state.settings.queue_poll_seconds)
            idle += state.settings.queue_poll_seconds
            if idle >= 15:
                idle = 0.0
                yield ": keep-alive\n\n"
            events, ended = await run_in_threadpool(read, last)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})

