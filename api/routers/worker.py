"""`/worker`: the protocol remote workers speak — claim, heartbeat, report, upload, finish.

Every write after the claim carries the lease in the `X-Loraplane-Lease` header and is
fenced by it: a stale lease gets 409 `lease_lost` and changes nothing.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import SessionDep, StateDep
from api.errors import Problem
from service import queue
from service.domain import Job
from service.queue import HeartbeatReply, JobFailure, Lease, WorkerEvent

router = APIRouter(prefix="/worker", tags=["worker"])

LeaseHeader = Annotated[str, Header(alias="X-Loraplane-Lease", min_length=1, max_length=40)]
ERRORS = {
    404: {"model": Problem, "description": "No such job"},
    409: {"model": Problem, "description": "The lease is no longer current: abandon the job"},
    422: {"model": Problem, "description": "Invalid input"},
}


class ClaimRequest(BaseModel):
    worker_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@-]+$")
    wait_seconds: float = Field(0.0, ge=0, description="Long-poll up to this long (capped).")
    device: str | None = Field(None, max_length=64)


class Report(BaseModel):
    events: list[WorkerEvent] = Field(default_factory=list, max_length=1000)
    step: int | None = Field(None, ge=0)
    total: int | None = Field(None, ge=0)
    metrics: dict[str, float | int | str | None] | None = None


class Release(BaseModel):
    reason: str = Field("handed back by the worker", max_length=500)


@router.post(
    "/claim",
    response_model=Lease,
    operation_id="claim_job",
    summary="Claim the next queued job (long-poll); 204 when none arrived in time",
    responses={204: {"description": "No job"}, 422: ERRORS[422]},
)
async def claim(body: ClaimRequest, state: StateDep) -> Lease | Response:
    settings = state.settings
    deadline = time.monotonic() + min(body.wait_seconds, settings.claim_wait_seconds)

    def attempt() -> Lease | None:
        with state.sessions() as session:
            lease = queue.claim_next_job(session, worker_id=body.worker_id,
                                         lease_seconds=settings.lease_seconds)
            session.commit()
            return lease

    while True:
        lease = await run_in_threadpool(attempt)
        if lease is not None:
            return lease
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Response(status_code=204)
        # Woken at once by a submit in this process; the poll covers other API replicas.
        await state.new_work.wait(min(remaining, settings.queue_poll_seconds))


@router.post("/jobs/{job_id}/heartbeat", response_model=HeartbeatReply,
             operation_id="heartbeat_job", summary="Renew the lease", responses=ERRORS)
def heartbeat(job_id: str, lease: LeaseHeader, session: SessionDep, state: StateDep) -> HeartbeatReply:
    reply = queue.heartbeat(session, job_id, lease, lease_seconds=state.settings.lease_seconds)
    session.commit()
    return reply


@router.post("/jobs/{job_id}/events", status_code=204, operation_id="report_job_events",
             summary="Report log lines, metrics and progress", responses=ERRORS)
def report(job_id: str, body: Report, lease: LeaseHeader, session: SessionDep) -> Response:
    queue.report(session, job_id, lease, events=body.events, step=body.step, total=body.total,
                 metrics=body.metrics)
    session.commit()
    return Response(status_code=204)


@router.post("/jobs/{job_id}/fail", response_model=Job, operation_id="fail_job",
             summary="Report a failed attempt", responses=ERRORS)
def fail(job_id: str, body: JobFailure, lease: LeaseHeader, session: SessionDep) -> Job:
    job = queue.fail(session, job_id, lease, body)
    session.commit()
    return job


@router.post("/jobs/{job_id}/release", response_model=Job, operation_id="release_job",
             summary="Hand a job back to the queue (after a checkpoint)", responses=ERRORS)
async def release(job_id: str, body: Release, lease: LeaseHeader, state: StateDep) -> Job:
    def run() -> Job:
        with state.sessions() as session:
            job = queue.release(session, job_id, lease, reason=body.reason)
            session.commit()
            return job

    job = await run_in_threadpool(run)
    await state.notify_new_work()
    return job


@router.post("/jobs/{job_id}/cancelled", response_model=Job, operation_id="acknowledge_cancel",
             summary="Confirm a cancelled job has stopped", responses=ERRORS)
def cancelled(job_id: str, lease: LeaseHeader, session: SessionDep) -> Job:
    job = queue.acknowledge_cancel(session, job_id, lease)
    session.commit()
    return job
