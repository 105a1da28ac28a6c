"""`/worker`: the protocol remote workers speak — claim, heartbeat, report, upload, finish.

Every write after the claim carries the lease in the `X-Loraplane-Lease` header and is
fenced by it: a stale lease gets 409 `lease_lost` and changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Header, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.deps import AppState, BaseUrlDep, StateDep, WorkerSessionDep, require
from api.downloads import blob_response, blob_route
from api.errors import AUTH_ERRORS, problems
from service import dispatch, queue, tasks
from service.artifacts import Blob, validate_sha256
from service.registry.blobs import collect_garbage
from service.schemas import (
    AdapterResult,
    Checkpoint,
    CheckpointUpload,
    Claim,
    ClaimRequest,
    HeartbeatReply,
    Job,
    JobFailure,
    JobState,
    Release,
    Report,
    Role,
    TaskResult,
)

router = APIRouter(prefix="/worker", tags=["worker"],
                   dependencies=[require(Role.worker, Role.admin)],
                   responses=AUTH_ERRORS)

T = TypeVar("T")
LeaseHeader = Annotated[str, Header(alias="X-Loraplane-Lease", min_length=1, max_length=40)]
ERRORS = problems({
    404: "No such job",
    409: "The lease is no longer current: abandon the job",
    422: "Invalid input",
})


@router.post(
    "/claim",
    response_model=Claim,
    operation_id="claim_job",
    summary="Claim the next queued job (long-poll); 204 when none arrived in time",
    responses={204: {"description": "No job"}, 422: ERRORS[422]},
)
async def claim(body: ClaimRequest, request: Request, state: StateDep) -> Claim | Response:
    settings = state.settings
    deadline = time.monotonic() + min(body.wait_seconds, settings.claim_wait_seconds)

    def attempt() -> Claim | None:
        with state.session(None) as session:
            lease = dispatch.claim(session, settings, worker_id=body.worker_id,
                                   devices=body.devices)
            session.commit()
            return lease

    while True:
        lease = await run_in_threadpool(attempt)
        if lease is not None:
            return lease
        remaining = deadline - time.monotonic()
        if remaining <= 0 or await request.is_disconnected():
            return Response(status_code=204)
        # Woken at once by a submit in this process; the poll covers other API replicas.
        await state.new_work.wait(min(remaining, settings.queue_poll_seconds),
                                  devices=body.devices)


async def in_transaction(state: AppState, write: Callable[[Session], T]) -> T:
    """`write` in a session of its own, committed, in one trip to the threadpool: the worker
    protocol's frequent calls (heartbeat, report, fail) open, write, commit and close there,
    and their answer is checked on the event loop (a sync endpoint would take two more trips)."""

    def run() -> T:
        with state.session(None) as session:
            result = write(session)
            session.commit()
            return result

    return await run_in_threadpool(run)


@router.post("/jobs/{job_id}/heartbeat", response_model=HeartbeatReply,
             operation_id="heartbeat_job", summary="Renew the lease", responses=ERRORS)
async def heartbeat(job_id: str, lease: LeaseHeader, state: StateDep) -> HeartbeatReply:
    seconds = state.settings.lease_seconds
    return await in_transaction(
        state, lambda session: queue.heartbeat(session, job_id, lease, lease_seconds=seconds))


@router.post("/jobs/{job_id}/events", status_code=204, operation_id="report_job_events",
             summary="Report log lines, metrics and progress", responses=ERRORS)
async def report(job_id: str, body: Report, lease: LeaseHeader, state: StateDep) -> Response:
    await in_transaction(state, lambda session: queue.report(
        session, job_id, lease, events=body.events, step=body.step, total=body.total,
        metrics=body.metrics))
    return Response(status_code=204)


@router.post("/jobs/{job_id}/fail", response_model=Job, operation_id="fail_job",
             summary="Report a failed attempt", responses=ERRORS)
async def fail(job_id: str, body: JobFailure, lease: LeaseHeader, state: StateDep) -> Job:
    return await in_transaction(state, lambda session: queue.fail(session, job_id, lease, body))


@router.post("/jobs/{job_id}/release", response_model=Job, operation_id="release_job",
             summary="Hand a job back to the queue (after a checkpoint)", responses=ERRORS)
async def release(job_id: str, body: Release, lease: LeaseHeader, state: StateDep) -> Job:
    def run() -> Job:
        with state.session(None) as session:
            job = queue.release(session, job_id, lease, reason=body.reason)
            session.commit()
            return job

    job = await run_in_threadpool(run)
    if job.state == JobState.queued:  # not a cancel that won
        state.new_work.notify(job.devices)
    return job


@router.post("/jobs/{job_id}/cancelled", response_model=Job, operation_id="acknowledge_cancel",
             summary="Confirm a cancelled job has stopped", responses=ERRORS)
async def cancelled(job_id: str, lease: LeaseHeader, state: StateDep) -> Job:
    return await in_transaction(state,
                                lambda session: queue.acknowledge_cancel(session, job_id, lease))


@router.put(
    "/jobs/{job_id}/blobs/{sha256}",
    status_code=201,
    response_model=Blob,
    operation_id="upload_job_blob",
    summary="Upload one file (checkpoint or result) by its sha256; streamed and verified",
    responses={**ERRORS, **problems({413: None})},
    openapi_extra={"requestBody": {"required": True, "description": "The file's bytes.", "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def upload_blob(job_id: str, sha256: str, request: Request, lease: LeaseHeader,
                      state: StateDep) -> Blob:
    validate_sha256(sha256)

    def check_lease() -> None:
        with state.session(None) as session:
            queue.fenced_row(session, job_id, lease)
            session.commit()

    await run_in_threadpool(check_lease)
    declared = request.headers.get("content-length")
    return await state.store.put_stream(
        request.stream(),
        expected_sha256=sha256,
        max_bytes=state.settings.max_artifact_bytes,
        expected_size=int(declared) if declared and declared.isdigit() else None,
    )


@blob_route(
    router,
    "/jobs/{job_id}/inputs/{sha256}",
    operation_id="download_job_input",
    summary="Download an input of the held job (dataset, adapter, checkpoint file) by sha256",
    responses=ERRORS,
)
def download_input(job_id: str, sha256: str, request: Request, lease: LeaseHeader,
                   session: WorkerSessionDep, state: StateDep) -> Response:
    size = dispatch.input_blob(session, job_id, lease, validate_sha256(sha256))
    session.commit()
    return blob_response(request, state.store, sha256=sha256, size=size, filename=sha256)


@router.post("/jobs/{job_id}/checkpoints", status_code=201, response_model=Checkpoint,
             operation_id="add_job_checkpoint", summary="Record an uploaded checkpoint",
             responses=ERRORS)
def add_checkpoint(job_id: str, body: CheckpointUpload, lease: LeaseHeader, session: WorkerSessionDep,
                   state: StateDep, base_url: BaseUrlDep) -> Checkpoint:
    checkpoint = dispatch.add_checkpoint(session, state.store, job_id, lease, body,
                                         base_url=base_url)
    session.commit()
    return checkpoint


@router.post("/jobs/{job_id}/complete", response_model=Job, operation_id="complete_job",
             summary="Finish a job: it succeeds and its adapter is registered, together",
             responses=ERRORS)
def complete(job_id: str, body: AdapterResult, lease: LeaseHeader, session: WorkerSessionDep,
             state: StateDep, base_url: BaseUrlDep) -> Job:
    job, freed = dispatch.complete(session, state.store, state.settings, job_id, lease, body,
                                   base_url=base_url)
    session.commit()
    if freed:
        collect_garbage(session, state.store, freed)
    return job


@router.post("/jobs/{job_id}/result", response_model=Job, operation_id="finish_task",
             summary="Finish an evaluation or a sample job: its result is stored and it "
             "succeeds, together", responses=ERRORS)
def finish_task(job_id: str, body: TaskResult, lease: LeaseHeader,
                session: WorkerSessionDep) -> Job:
    job = tasks.finish_task(session, job_id, lease, body)
    session.commit()
    return job
