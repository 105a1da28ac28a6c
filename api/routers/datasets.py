"""`/datasets`: JSONL uploads (streamed, validated), reads, and content downloads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import CursorQuery, LimitQuery, PrincipalDep, SessionDep, StateDep, StoreDep, require
from api.downloads import blob_response, blob_route
from api.errors import AUTH_ERRORS, problems
from service import datasets as dataset_service
from service.datasets import MEDIA_TYPES
from service.errors import PayloadTooLarge, UnsupportedMediaType
from service.media import normalise_media_type
from service.schemas import Dataset, Page, Role

router = APIRouter(prefix="/datasets", tags=["datasets"], dependencies=[require(Role.admin, Role.user)],
                   responses=AUTH_ERRORS)

ERRORS = problems({404: "No such dataset", 422: "Invalid input"})
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "JSONL: one JSON object per line (UTF-8). Blank lines are skipped.",
        "content": {
            t: {"schema": {"type": "string", "format": "binary"}} for t in sorted(MEDIA_TYPES)
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=Dataset,
    operation_id="upload_dataset",
    summary="Upload a JSONL training file",
    openapi_extra=_UPLOAD_BODY,
    responses={**ERRORS, **problems({413: None, 415: None})},
)
async def upload_dataset(
    request: Request,
    response: Response,
    state: StateDep,
    principal: PrincipalDep,
    name: Annotated[
        str | None, Query(max_length=255, description="Default: the dataset id.")
    ] = None,
) -> Dataset:
    media = normalise_media_type(request.headers.get("content-type") or "application/octet-stream")
    if media not in MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {media!r} is not accepted for a dataset; "
            f"use one of {sorted(MEDIA_TYPES)}"
        )
    if name is not None:
        dataset_service.validate_name(name)
    limit = state.settings.max_dataset_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"the dataset is {declared} bytes; the limit is {limit} bytes", code="dataset_too_large"
        )
    blob, rows, keys = await dataset_service.ingest_jsonl(
        state.store, request.stream(), max_bytes=limit
    )

    def register() -> Dataset:
        with state.session(principal.project) as session:
            dataset = dataset_service.register_dataset(
                session, name=name, blob=blob, rows=rows, keys=keys
            )
            session.commit()
            return dataset

    dataset = await run_in_threadpool(register)
    response.headers["Location"] = f"/datasets/{dataset.id}"
    return dataset


@router.get(
    "",
    response_model=Page[Dataset],
    operation_id="list_datasets",
    summary="List datasets, newest first",
    responses=ERRORS,
)
def list_datasets(
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[Dataset]:
    return dataset_service.list_datasets(session, limit=limit, cursor=cursor)


@router.get(
    "/{dataset_id}",
    response_model=Dataset,
    operation_id="get_dataset",
    summary="Get a dataset",
    responses=ERRORS,
)
def get_dataset(dataset_id: str, session: SessionDep) -> Dataset:
    return dataset_service.get_dataset(session, dataset_id)


@blob_route(
    router,
    "/{dataset_id}/content",
    media_type="application/jsonl",
    operation_id="download_dataset",
    summary="Download a dataset's JSONL (ETag, Range, If-None-Match)",
    responses=ERRORS,
)
def download_dataset(
    dataset_id: str, request: Request, session: SessionDep, store: StoreDep
) -> Response:
    dataset = dataset_service.get_dataset(session, dataset_id)
    filename = dataset.name if dataset.name.endswith(".jsonl") else f"{dataset.name}.jsonl"
    return blob_response(
        request,
        store,
        sha256=dataset.sha256,
        size=dataset.size,
        filename=filename,
        media_type="application/jsonl",
    )
