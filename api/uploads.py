"""Request bodies read as they arrive, bounded: a blocking reader over the async body (for
tar parsing in a worker thread) and a streaming multipart/form-data reader."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio.from_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from service.artifacts import CHUNK_SIZE
from service.errors import InvalidRequest, PayloadTooLarge
from service.registry.files import validate_file_name
from service.registry.intake import Intake
from service.schemas import FileRef

MAX_FIELD_BYTES = 64 << 10
MAX_FIELDS = 100


def refuse_declared_size(request: Request, limit: int, what: str) -> None:
    """413 before reading, when Content-Length already says the body is too large."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"{what} is {declared} bytes; the limit is {limit} bytes",
                              code="import_too_large")


class BodyReader:
    """A blocking `read()` over a request body, for a worker thread started by anyio: each
    chunk is fetched from the event loop; past `limit` bytes it raises 413."""

    def __init__(self, request: Request, limit: int, what: str):
        self._chunks: AsyncIterator[bytes] = request.stream().__aiter__()
        self._buffer = b""
        self._done = False
        self.received = 0
        self.limit, self.what = limit, what

    async def _next(self) -> bytes | None:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return None

    def _fill(self) -> bool:
        if self._done:
            return False
        chunk = anyio.from_thread.run(self._next)
        if chunk is None:
            self._done = True
            return False
        self.received += len(chunk)
        if self.received > self.limit:
            raise PayloadTooLarge(f"{self.what} exceeds the limit of {self.limit} bytes",
                                  code="import_too_large")
        self._buffer += chunk
        return True

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            data, self._buffer = self._buffer, b""
            return data
        while len(self._buffer) < size and self._fill():
            pass
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


@dataclass
class Form:
    """A multipart body's text fields (repeatable) and its files, already stored."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[FileRef] = field(default_factory=list)

    def one(self, key: str) -> str | None:
        values = self.fields.get(key) or []
        if len(values) > 1:
            raise InvalidRequest(f"form field {key!r} is given {len(values)} times")
        return values[0] if values else None


def _events(reader: BodyReader, boundary: bytes) -> Iterator[tuple[str, Any]]:
    """The parser's callbacks as a stream of (event, value), fed chunk by chunk."""
    pending: list[tuple[str, Any]] = []
    header: dict[str, bytes] = {"field": b"", "value": b""}
    headers: dict[bytes, bytes] = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        headers[header["field"].lower()] = header["value"]
        header["field"] = header["value"] = b""

    def on_headers_finished() -> None:
        pending.append(("part", dict(headers)))
        headers.clear()

    callbacks = {
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": lambda data, start, end: pending.append(("data", data[start:end])),
        "on_part_end": lambda: pending.append(("end", None)),
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        while chunk := reader.read(CHUNK_SIZE):
            parser.write(chunk)
            yield from pending
            pending.clear()
        parser.finalize()
    except FormParserError as exc:
        raise InvalidRequest(f"the multipart/form-data body is malformed: {exc}") from None
    yield from pending


def read_multipart(request: Request, reader: BodyReader, intake: Intake) -> Form:
    """Text fields into memory (bounded), file parts straight into the store, each file's
    name checked before any of its bytes is read (a pickle is never stored)."""
    _, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidRequest("multipart/form-data without a boundary")
    form = Form()
    events = _events(reader, boundary)

    def part_data() -> Iterator[bytes]:
        for kind, value in events:
            if kind == "end":
                return
            if kind == "data":
                yield value

    for kind, value in events:
        if kind != "part":
            continue
        _, disposition = parse_options_header(value.get(b"content-disposition", b""))
        field_name = disposition.get(b"name", b"").decode("utf-8", "replace")
        filename = disposition.get(b"filename")
        if filename is not None:
            name = validate_file_name(filename.decode("utf-8", "replace"))
            form.files.append(intake.put_file_ref(name, part_data(), None))
            continue
        text = b""
        for chunk in part_data():
            text += chunk
            if len(text) > MAX_FIELD_BYTES:
                raise PayloadTooLarge(f"form field {field_name!r} exceeds {MAX_FIELD_BYTES} bytes")
        if sum(len(v) for v in form.fields.values()) >= MAX_FIELDS:
            raise InvalidRequest(f"more than {MAX_FIELDS} form fields")
        form.fields.setdefault(field_name, []).append(text.decode("utf-8", "replace"))
    return form
