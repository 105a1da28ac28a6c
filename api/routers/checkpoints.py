"""`/jobs/{job_id}/checkpoints`: what a job saved so far, and each checkpoint's files."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import BaseUrlDep, CursorQuery, LimitQuery, SessionDep, StoreDep, require
from api.downloads import blob_response, blob_route
from api.errors import AUTH_ERRORS, problems
from service.registry import checkpoints
from service.schemas import Checkpoint, Page, Role

router = APIRouter(prefix="/jobs", tags=["checkpoints"], dependencies=[require(Role.admin, Role.user)],
                   responses=AUTH_ERRORS)

ERRORS = problems({404: "No such job, checkpoint or file", 422: "Invalid input"})


@router.get(
    "/{job_id}/checkpoints",
    response_model=Page[Checkpoint],
    operation_id="list_checkpoints",
    responses=ERRORS,
    summary="A job's checkpoints by step, each with a lora_path to continue from",
)
def list_checkpoints(
    job_id: str,
    session: SessionDep,
    base_url: BaseUrlDep,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> Page[Checkpoint]:
    return checkpoints.list_checkpoints(session, job_id, limit=limit, cursor=cursor,
                                        base_url=base_url)


@router.get(
    "/{job_id}/checkpoints/{checkpoint_id}",
    response_model=Checkpoint,
    operation_id="get_checkpoint",
    summary="One checkpoint (what its lora_path names)",
    responses=ERRORS,
)
def get_checkpoint(
    job_id: str, checkpoint_id: str, session: SessionDep, base_url: BaseUrlDep
) -> Checkpoint:
    return checkpoints.get_checkpoint(session, job_id, checkpoint_id, base_url=base_url)


@blob_route(
    router,
    "/{job_id}/checkpoints/{checkpoint_id}/files/{name:path}",
    operation_id="download_checkpoint_file",
    summary="Download one checkpoint file",
    responses=ERRORS,
)
def download_file(
    job_id: str,
    checkpoint_id: str,
    name: str,
    request: Request,
    session: SessionDep,
    store: StoreDep,
) -> Response:
    ref = checkpoints.checkpoint_file(session, job_id, checkpoint_id, name)
    return blob_response(request, store, sha256=ref.sha256, size=ref.size, filename=ref.name)
