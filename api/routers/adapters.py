"""`/adapters`: the registry, imports, metadata, file downloads, archives, deletion."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import (
    BaseUrlDep,
    CursorQuery,
    LimitQuery,
    PrincipalDep,
    SessionDep,
    StateDep,
    StoreDep,
    require,
)
from api.downloads import (
    blob_response,
    blob_route,
    content_disposition,
    none_match,
    tar_stream,
)
from api.errors import AUTH_ERRORS, problems
from api.uploads import BodyReader, read_multipart, refuse_declared_size
from service.errors import InvalidRequest, UnsupportedMediaType
from service.media import normalise_media_type
from service.registry import adapters, blobs, imports, metadata
from service.registry.intake import Intake, strip_common_folder, tar_members
from service.schemas import Adapter, AdapterPatch, Page, Role

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
    tag: Annotated[
        list[str] | None,
        Query(max_length=20, description="`key:value` (or `key`: has that tag); several: all "
              "must hold."),
    ] = None,
    order_by: Annotated[
        str,
        Query(max_length=80, description="`created_at` (newest first, the default), "
              "`metrics.<name>` (ascending) or `-metrics.<name>` (descending) by a final "
              "metric; adapters without that numeric metric come last either way, ties newest "
              "first."),
    ] = "created_at",
    servable: Annotated[
        Literal["vllm", "peft"] | None,
        Query(description="Only adapters that engine loads (their `serving.<engine>.ok`)."),
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[Adapter]:
    return adapters.list_adapters(
        session,
        name=name,
        base_model=base_model,
        kind=kind,
        tags=tag or [],
        servable=servable,
        order_by=order_by,
        limit=limit,
        cursor=cursor,
        base_url=base_url,
    )


IMPORT_TYPES = ("application/x-tar", "multipart/form-data")
_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "description": "The PEFT folder: the tar `GET /adapters/{id}/archive` produces (files at "
        "the top level, or in one folder), or multipart/form-data with one file part per file "
        "(its filename is the file's name) and the fields `name`, `base_model`, `description`, "
        "`tag` (`key:value`, repeatable).",
        "content": {
            "application/x-tar": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                "name": {"type": "string"},
                "base_model": {"type": "string"},
                "description": {"type": "string"},
                "tag": {"type": "array", "items": {"type": "string"}},
            }}},
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=Adapter,
    operation_id="import_adapter",
    summary="Import a PEFT folder trained elsewhere as the next version of `name`",
    description="Validated like a worker's result: safetensors only (pickle formats are refused "
    "unread), adapter_config.json checked, every LoRA tensor's shape consistent with the rank, "
    "no path tricks in names. 201 with the new version; 200 with the existing one when `name` "
    "already holds exactly these bytes (same digest).",
    openapi_extra=_IMPORT_BODY,
    responses={**ERRORS, 200: {"model": Adapter, "description": "These bytes are already a "
               "version of `name`: that version"}, **problems({413: None, 415: None})},
)
async def import_adapter(
    request: Request,
    response: Response,
    state: StateDep,
    principal: PrincipalDep,
    base_url: BaseUrlDep,
    name: Annotated[str | None, Query(max_length=100, description="The adapter name.")] = None,
    base_model: Annotated[
        str | None, Query(max_length=4096, description="The model it was trained on.")
    ] = None,
    description: Annotated[str | None, Query(max_length=4096)] = None,
    tag: Annotated[list[str] | None, Query(max_length=50, description="`key:value`")] = None,
) -> Adapter:
    media = normalise_media_type(request.headers.get("content-type"))
    if media not in IMPORT_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {media!r} is not accepted for an import; use one of {list(IMPORT_TYPES)}"
        )
    if name is not None or base_model is not None:
        imports.validate_import_fields(name or "x", base_model or "x")
    limit = state.settings.max_artifact_bytes
    refuse_declared_size(request, limit, "the import")
    reader = BodyReader(request, limit, "the import")

    def run() -> tuple[Adapter, bool]:
        intake = Intake(state.store, max_file_bytes=limit)
        with state.session(principal.project) as session:
            try:
                fields: dict[str, list[str]] = {}
                if media == "application/x-tar":
                    files = [intake.put_file_ref(m.name, m.chunks(), m.size)
                             for m in tar_members(reader, max_file_bytes=limit)]
                else:
                    form = read_multipart(request, reader, intake)
                    files, fields = form.files, form.fields
                given = {"name": name, "base_model": base_model, "description": description}
                for key, value in list(given.items()):
                    values = fields.get(key) or []
                    if len(values) > 1 or (values and value is not None and values[0] != value):
                        raise InvalidRequest(f"{key!r} is given more than once")
                    given[key] = value if value is not None else (values[0] if values else None)
                adapter, created = imports.import_adapter(
                    session, state.store, strip_common_folder(files),
                    name=given["name"] or "", base_model=given["base_model"] or "",
                    description=given["description"],
                    tags=imports.parse_tag_items([*(tag or []), *fields.get("tag", [])]),
                    base_url=base_url,
                )
                session.commit()
            except BaseException:
                session.rollback()
                intake.discard(session)
                raise
        return adapter, created

    adapter, created = await run_in_threadpool(run)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/adapters/{adapter.id}"
    return adapter


@router.patch(
    "/{adapter_id}",
    response_model=Adapter,
    operation_id="update_adapter",
    summary="Change an adapter's description and tags (JSON merge patch)",
    responses=ERRORS,
)
def update_adapter(
    adapter_id: str, body: AdapterPatch, session: SessionDep, base_url: BaseUrlDep
) -> Adapter:
    adapter = metadata.update_metadata(session, adapter_id, body, base_url=base_url)
    session.commit()
    return adapter


@router.get(
    "/{adapter_id}",
    response_model=Adapter,
    operation_id="get_adapter",
    summary="Get an adapter",
    responses=ERRORS,
)
async def get_adapter(adapter_id: str, session: SessionDep, base_url: BaseUrlDep) -> Adapter:
    def read() -> Adapter:
        # The read and the end of its transaction (the token was checked in it: api/gate.py)
        # in one trip to the threadpool.
        try:
            return adapters.get_adapter(session, adapter_id, base_url=base_url)
        finally:
            session.close()

    return await run_in_threadpool(read)


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
