"""Serving blobs over HTTP: conditional and range requests, and tar streams of several blobs."""

from __future__ import annotations

import asyncio
import logging
import re
import tarfile
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api.errors import Problem
from service.artifacts import ArtifactStore, validate_sha256
from service.errors import InvalidRequest, RangeNotSatisfiable, ServiceError

log = logging.getLogger(__name__)

_ETAG = re.compile(r'\s*(?:W/)?"([^"]*)"\s*(?:,|$)')
_BYTE_RANGE = re.compile(r"(\d*)-(\d*)")
# The reads a download is sent in: one threadpool trip and one socket write each. 1 MiB sent
# a 1 GiB local blob at ~1.2 GiB/s, 2 MiB at ~1.45, 4 MiB at ~1.6 with three times the memory
# per download (about two reads are held: the one being sent and the next); BENCHMARKS.md §6.
DOWNLOAD_READ_BYTES = 2 << 20


class _Unsatisfiable(Exception):
    pass


def blob_route(
    router: APIRouter, path: str, *, media_type: str = "application/octet-stream", **options: Any
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Register a download endpoint for GET (documented, with `blob_responses`) and for HEAD
    (the same handler, kept out of the schema: one operation id per operation)."""
    responses = {**options.pop("responses", {}), **blob_responses(media_type)}

    def register(endpoint: Callable[..., Response]) -> Callable[..., Response]:
        router.add_api_route(path, endpoint, methods=["GET"], response_class=Response,
                             responses=responses, **options)
        router.add_api_route(path, endpoint, methods=["HEAD"], response_class=Response,
                             include_in_schema=False)
        return endpoint

    return register


def blob_responses(media_type: str = "application/octet-stream") -> dict[int | str, dict]:
    """The OpenAPI `responses` of a route answered by `blob_response`."""
    return {
        200: {"content": {media_type: {}}, "description": "The bytes"},
        206: {"description": "Partial content (Range)"},
        307: {"description": "With an object store and presigned downloads on: GET the bytes "
                             "from `Location` (no token; the sha256 is the ETag here)"},
        304: {"description": "Not modified (If-None-Match)"},
        416: {"model": Problem, "description": "Range not satisfiable"},
    }


def blob_response(
    request: Request,
    store: ArtifactStore,
    *,
    sha256: str,
    size: int,
    filename: str,
    media_type: str = "application/octet-stream",
) -> Response:
    """A GET/HEAD response for a blob: ETag, 304, single ranges (206; one past the end raises
    RangeNotSatisfiable, 416), attachment name."""
    validate_sha256(sha256)
    etag = f'"{sha256}"'
    if none_match(request.headers.get("if-none-match"), sha256):
        return Response(status_code=304, headers={"etag": etag, "accept-ranges": "bytes"})

    headers = {
        "etag": etag,
        "accept-ranges": "bytes",
        "content-disposition": content_disposition(filename),
    }
    span = None
    range_header = request.headers.get("range")
    if range_header is not None and _if_range_holds(request.headers.get("if-range"), etag):
        try:
            span = _single_range(range_header, size)
        except _Unsatisfiable:
            raise RangeNotSatisfiable(
                f"range {range_header!r} lies outside the {size} bytes of {filename!r}",
                headers={
                    "content-range": f"bytes */{size}",
                    "etag": etag,
                    "accept-ranges": "bytes",
                },
            ) from None
    start, end = span if span is not None else (0, size - 1)
    status = 200 if span is None else 206
    if span is not None:
        headers["content-range"] = f"bytes {start}-{end}/{size}"
    headers["content-length"] = str(end - start + 1)

    if request.method == "HEAD" or size == 0:
        return Response(status_code=status, headers=headers, media_type=media_type)
    if (url := store.download_url(sha256, filename=filename, media_type=media_type)) is not None:
        # The bytes come from the object store itself; the client sends its Range again there
        # and verifies the sha256 (the ETag here) as it would from this server.
        return Response(status_code=307, headers={"location": url, "etag": etag,
                                                  "cache-control": "no-store"})
    return StreamingResponse(
        ReadAhead(store.iter_range(sha256, start, end, DOWNLOAD_READ_BYTES)),
        status_code=status,
        headers=headers,
        media_type=media_type,
    )


class ReadAhead:
    """The chunks of a blocking iterator, each read in the threadpool while the one before it
    is being sent, so the socket never waits on the disk (or the object store) nor the disk on
    the socket. The one-at-a-time alternative (`iterate_in_threadpool`) left the socket idle
    for a read after every drained chunk: ~30 % of a local download's time (BENCHMARKS.md §6).
    """

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._next: asyncio.Future[bytes | None] | None = None

    def __aiter__(self) -> ReadAhead:
        return self

    def _read(self) -> asyncio.Future[bytes | None]:
        future = asyncio.ensure_future(run_in_threadpool(next, self._chunks, None))
        # A read still running when the client hung up ends unawaited: its error is dropped.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        return future

    async def __anext__(self) -> bytes:
        pending = self._next or self._read()
        self._next = None
        chunk = await pending
        if chunk is None:
            raise StopAsyncIteration
        self._next = self._read()
        return chunk


def none_match(header: str | None, tag: str) -> bool:
    """If-None-Match with weak comparison (RFC 9110 §13.1.2): `*` or any listed tag."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return any(m.group(1) == tag for m in _ETAG.finditer(header))


def _if_range_holds(header: str | None, etag: str) -> bool:
    """If-Range needs a strong match; a date or a weak or other tag means "send it all"."""
    return header is None or header.strip() == etag


def _single_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) of a single `bytes=` range; None to ignore the header and send it all.

    Raises `_Unsatisfiable` for a range that starts at or past the end (even one whose last
    position is below its first) and for a zero-length suffix.
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # other units are ignored; several ranges get the whole file (RFC 9110)
    m = _BYTE_RANGE.fullmatch(spec.strip())
    if m is None or m.group(1) == m.group(2) == "":
        return None
    first, last = m.group(1), m.group(2)
    if first == "":
        suffix = int(last)
        if size == 0:
            return None
        if suffix == 0:
            raise _Unsatisfiable
        return max(size - suffix, 0), size - 1
    start = int(first)
    if start >= size:
        raise _Unsatisfiable
    end = size - 1 if last == "" else int(last)
    if end < start:
        return None
    return start, min(end, size - 1)


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII `filename` and, when needed, a UTF-8 `filename*` (RFC 6266)."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    if name in ("", ".", ".."):
        name = "download"
    fallback = "".join(c if c.isascii() and c not in '"\\' else "_" for c in name)
    value = f'attachment; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


def safe_archive_name(name: str) -> str:
    """A relative archive path: no leading `/` or drive, no `.`/`..` parts, no control chars."""
    parts = [
        "".join(c for c in part if c.isprintable())
        for part in re.split(r"[\\/]+", name)
        if part not in ("", ".", "..")
    ]
    if parts and re.fullmatch(r"[A-Za-z]:", parts[0]):
        parts = parts[1:]
    parts = [p for p in parts if p]
    if not parts:
        raise InvalidRequest(f"unusable name for an archive member: {name!r}")
    return "/".join(parts)


def tar_stream(
    entries: list[tuple[str, str, int]], store: ArtifactStore, *, mtime: float | None = None
) -> Iterator[bytes]:
    """An uncompressed tar of (archive name, sha256, size) entries, streamed blob by blob.

    Names and blobs are checked before the first byte, so a bad entry fails the request
    rather than breaking the stream halfway.
    """
    stamp = int(time.time() if mtime is None else mtime)
    members: list[tuple[bytes, str, int]] = []
    seen: set[str] = set()
    for name, sha256, size in entries:
        arcname = safe_archive_name(name)
        if arcname in seen:
            raise InvalidRequest(f"two archive members named {arcname!r}")
        seen.add(arcname)
        if (stored := store.size(sha256)) != size:
            raise ServiceError(f"blob {sha256} of {arcname!r} holds {stored} bytes, not {size}")
        info = tarfile.TarInfo(arcname)
        info.size, info.mtime, info.mode = size, stamp, 0o644
        members.append((info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"), sha256, size))
    return _tar_chunks(members, store)


def _tar_chunks(members: list[tuple[bytes, str, int]], store: ArtifactStore) -> Iterator[bytes]:
    written = 0
    for header, sha256, size in members:
        yield header
        if size:
            yield from store.iter_range(sha256, 0, size - 1)
        padding = -size % tarfile.BLOCKSIZE
        if padding:
            yield tarfile.NUL * padding
        written += len(header) + size + padding
    # End of archive: two zero blocks, then zeros up to a whole record, as tarfile writes it.
    trailer = 2 * tarfile.BLOCKSIZE
    trailer += -(written + trailer) % tarfile.RECORDSIZE
    yield tarfile.NUL * trailer
