"""`/export` and `/import`: a project's whole registry as one tar stream, and back."""

from __future__ import annotations

import tarfile

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import PrincipalDep, SessionDep, StateDep, StoreDep, require
from api.downloads import content_disposition, tar_stream
from api.errors import AUTH_ERRORS, problems
from api.uploads import BodyReader, refuse_declared_size
from service.errors import UnsupportedMediaType
from service.media import normalise_media_type
from service.registry import transfer
from service.registry.intake import Intake, tar_members
from service.schemas import RegistryImport, Role

router = APIRouter(tags=["registry"], dependencies=[require(Role.admin, Role.user)],
                   responses=AUTH_ERRORS)

ERRORS = problems({409: "An adapter of the archive conflicts with one here",
                   422: "Invalid archive"})


@router.get(
    "/export",
    response_class=StreamingResponse,
    operation_id="export_registry",
    summary="The project's whole registry as one tar: manifest.json, then blobs/<sha256>",
    responses={**ERRORS, 200: {"content": {"application/x-tar": {}}}},
)
def export_registry(session: SessionDep, store: StoreDep) -> Response:
    manifest, entries = transfer.export_registry(session)
    head = tarfile.TarInfo(transfer.MANIFEST)
    body = transfer.manifest_bytes(manifest)
    head.size, head.mtime, head.mode = len(body), int(manifest.exported_at.timestamp()), 0o644
    first = (head.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + body
             + tarfile.NUL * (-len(body) % tarfile.BLOCKSIZE))
    blobs = tar_stream(entries, store, mtime=manifest.exported_at.timestamp())

    def chunks():
        yield first
        yield from blobs

    stamp = manifest.exported_at.strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(chunks(), media_type="application/x-tar", headers={
        "content-disposition": content_disposition(f"loraplane-{manifest.project}-{stamp}.tar"),
    })


@router.post(
    "/import",
    response_model=RegistryImport,
    operation_id="import_registry",
    summary="Restore a registry archive (GET /export) into this project",
    description="Keeps ids, versions, aliases and lineage; every adapter is checked like a "
    "worker's result; blobs the store holds are not written again. Adapters already here with "
    "the same files are left as they are; any other clash is a 409 and nothing is imported.",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/x-tar": {"schema": {"type": "string", "format": "binary"}}}}},
    responses={**ERRORS, **problems({413: None, 415: None})},
)
async def import_registry(request: Request, state: StateDep,
                          principal: PrincipalDep) -> RegistryImport:
    media = normalise_media_type(request.headers.get("content-type"))
    if media != "application/x-tar":
        raise UnsupportedMediaType(f"Content-Type {media!r}: a registry archive is "
                                   "application/x-tar")
    limit = state.settings.max_artifact_bytes
    refuse_declared_size(request, limit, "the registry archive")
    reader = BodyReader(request, limit, "the registry archive")

    def run() -> RegistryImport:
        intake = Intake(state.store, max_file_bytes=limit)
        with state.session(principal.project) as session:
            try:
                manifest, present = transfer.read_archive(
                    tar_members(reader, max_file_bytes=limit), intake)
                result = transfer.restore_registry(session, state.store, manifest)
                session.commit()
            except BaseException:
                session.rollback()
                intake.discard(session)
                raise
        return result.model_copy(update={"blobs_stored": len(intake.added),
                                         "blobs_present": present})

    return await run_in_threadpool(run)
