"""`/adapters`: the registry, file downloads, archives, deletion."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.deps import BaseUrlDep, CursorQuery, LimitQuery, SessionDep, StoreDep, require
from api.downloads import (
    blob_response,
    blob_route,
    content_disposition,
    none_match,
    tar_stream,
)
from api.errors import AUTH_ERRORS, problems
from service.registry import adapters, blobs
from service.schemas import Adapter, Page, Role

router = APIRouter(prefix="/adapters", tags=["adapters"], dependencies=[require(Role.admin, Role.user)],
                   responses=AUTH_ERRORS)

ERRORS = problems({404: "No such adapter or file", 409: "Conflict", 422: "Invalid input"})


@router.get(
    "",
    response_model=Page[Adapter],
    operation_id="list_adapters",
    summary="List adapters, newest first",
    responses=ERRORS,
)
def list_adapters(
    session: SessionDep,
    base_url: BaseUrlDep,
    name: Annotated[str | None, Query(max_length=100)] = None,
    base_model: Annotated[str | None, Query(max_length=4096)] = None,
    kind: Literal["lora", "full"] | None = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[Adapter]:
    return adapters.list_adapters(
        session,
        name=name,
        base_model=base_model,
        kind=kind,
        limit=limit,
        cursor=cursor,
        base_url=base_url,
    )


@router.get(
    "/{adapter_id}",
    response_model=Adapter,
    operation_id="get_adapter",
    summary="Get an adapter",
    responses=ERRORS,
)
def get_adapter(adapter_id: str, session: SessionDep, base_url: BaseUrlDep) -> Adapter:
    return adapters.get_adapter(session, adapter_id, base_url=base_url)


@router.delete(
    "/{adapter_id}",
    status_code=204,
    response_class=Response,
    operation_id="delete_adapter",
    responses=ERRORS,
    summary="Delete an adapter no alias or unfinished job refers to",
)
def delete_adapter(adapter_id: str, session: SessionDep, store: StoreDep) -> Response:
    garbage = adapters.delete_adapter(session, adapter_id)
    session.commit()
    blobs.collect_garbage(session, store, garbage)
    return Response(status_code=204)


@blob_route(
    router,
    "/{adapter_id}/files/{name:path}",
    operation_id="download_adapter_file",
    summary="Download one file of the PEFT folder",
    responses=ERRORS,
)
def download_file(
    adapter_id: str, name: str, request: Request, session: SessionDep, store: StoreDep
) -> Response:
    ref = adapters.adapter_file(session, adapter_id, name)
    media = "application/json" if name.endswith(".json") else "application/octet-stream"
    return blob_response(
        request, store, sha256=ref.sha256, size=ref.size, filename=ref.name, media_type=media
    )


@router.get(
    "/{adapter_id}/archive",
    response_class=StreamingResponse,
    operation_id="download_adapter_archive",
    summary="The whole PEFT folder as one tar stream (files at the top level)",
    responses={
        **ERRORS,
        200: {"content": {"application/x-tar": {}}},
        304: {"description": "Not modified (If-None-Match)"},
    },
)
def download_archive(
    adapter_id: str, request: Request, session: SessionDep, store: StoreDep
) -> Response:
    adapter = adapters.adapter_row(session, adapter_id)
    files = adapters.adapter_files(session, adapter_id)
    # The tar is a function of the files and the adapter's creation time: a stable ETag.
    digest = hashlib.sha256(
        "\n".join(f"{f.name}\0{f.sha256}" for f in files).encode()
        + adapter.created_at.isoformat().encode()
    ).hexdigest()
    etag = f'"tar-{digest}"'
    if none_match(request.headers.get("if-none-match"), f"tar-{digest}"):
        return Response(status_code=304, headers={"etag": etag})
    chunks = tar_stream(
        [(f.name, f.sha256, f.size) for f in files],
        store,
        mtime=adapter.created_at.timestamp(),
    )
    filename = f"{adapter.name}-v{adapter.version}.tar"
    return StreamingResponse(
        chunks,
        media_type="application/x-tar",
        headers={
            "etag": etag,
            "content-disposition": content_disposition(filename),
        },
    )
