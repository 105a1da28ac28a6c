"""Datasets: JSONL uploads streamed into the artifact store, validated line by line.

An upload is hashed and written to a temp file while each line is parsed, so memory stays
bounded by the longest line; a bad line or an oversized body aborts the write, and nothing
is stored or registered.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import models
from db.base import utcnow
from service.artifacts import ArtifactStore, ArtifactTooLarge, Blob
from service.errors import InvalidDataset, InvalidRequest, InvalidSpec, NotFound, PayloadTooLarge
from service.ids import has_prefix, new_id
from service.paging import newest_first
from service.paths import outside_roots
from service.schemas import Dataset, Page
from service.spec import JobSpec

MEDIA_TYPES = frozenset(
    {
        "application/jsonl",
        "application/x-ndjson",
        "application/x-jsonlines",
        "application/jsonlines",
        "application/octet-stream",
    }
)
MAX_LINE_BYTES = 32 << 20
_BATCH_BYTES = 1 << 20
MESSAGES_KEY = "messages"  # conversations under this key are checked at upload
ROLES = ("system", "user", "assistant")


def _kind(value: object) -> str:
    return {list: "a list", dict: "an object", type(None): "null", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def conversation_problem(messages: object) -> str | None:
    """What is wrong with an OpenAI-style `messages` value, or None (README, "Chat data";
    the worker's trainer applies the same rules to files it reads)."""
    if not isinstance(messages, list) or not messages:
        return "must be a non-empty list of {role, content} messages"
    for number, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            return f"message {number} is {_kind(message)}, not an object"
        if "role" not in message:
            return f"message {number} has no 'role'"
        role = message["role"]
        if role not in ROLES:
            return f"message {number} has unknown role {role!r}; roles are {', '.join(ROLES)}"
        if "content" not in message:
            return f"message {number} ({role}) has no 'content'"
        if not isinstance(message["content"], str):
            content = _kind(message["content"])
            return f"message {number} ({role}) has content that is {content}, not a string"
    if not any(message["role"] == "assistant" for message in messages):
        return "has no assistant turn, so nothing to train on"
    return None


def to_dataset(row: models.Dataset) -> Dataset:
    return Dataset.model_validate(row, from_attributes=True)


@dataclass
class JsonlValidator:
    """Fed bytes in any chunking; checks each `\\n`-terminated line is one JSON object."""

    max_line_bytes: int = MAX_LINE_BYTES
    messages_key: str = MESSAGES_KEY
    rows: int = 0
    lines: int = 0
    keys: set[str] | None = None
    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> None:
        self._buffer += data
        start = 0
        while (end := self._buffer.find(b"\n", start)) >= 0:
            self._line(bytes(self._buffer[start:end]))
            start = end + 1
        del self._buffer[:start]
        if len(self._buffer) > self.max_line_bytes:
            raise self._bad(self.lines + 1, f"is longer than {self.max_line_bytes} bytes")

    def finish(self) -> tuple[int, list[str]]:
        """Rows and the keys every row has; 422 for an empty dataset."""
        if self._buffer:
            self._line(bytes(self._buffer))
            self._buffer.clear()
        if self.rows == 0:
            raise InvalidDataset("the dataset has no rows: expected one JSON object per line")
        return self.rows, sorted(self.keys or ())

    def _line(self, raw: bytes) -> None:
        self.lines += 1
        if not raw.strip():
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._bad(self.lines, f"is not valid UTF-8 (byte {exc.start + 1})") from None
        try:
            value = json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise self._bad(
                self.lines, f"is not valid JSON: {exc.msg} (column {exc.colno})"
            ) from None
        except ValueError as exc:
            raise self._bad(self.lines, str(exc)) from None
        if not isinstance(value, dict):
            raise self._bad(self.lines, f"is a JSON {_json_type(value)}, not an object")
        if self.messages_key in value:
            problem = conversation_problem(value[self.messages_key])
            if problem:
                raise self._bad(self.lines, f"{self.messages_key!r} {problem}",
                                kind="invalid_conversation")
        self.rows += 1
        self.keys = set(value) if self.keys is None else self.keys & value.keys()

    @staticmethod
    def _bad(line: int, message: str, kind: str = "invalid_jsonl") -> InvalidDataset:
        detail = f"line {line} {message}; nothing was stored"
        return InvalidDataset(
            detail, errors=[{"loc": f"body.line.{line}", "msg": detail, "type": kind}]
        )


def _no_constant(name: str) -> None:
    raise ValueError(f"holds {name}, which is not JSON")


def _json_type(value: object) -> str:
    return {
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


async def ingest_jsonl(
    store: ArtifactStore, chunks: AsyncIterator[bytes], *, max_bytes: int
) -> tuple[Blob, int, list[str]]:
    """Stream a JSONL body into the store while validating it: (blob, rows, keys)."""
    validator = JsonlValidator()
    stats: tuple[int, list[str]] | None = None

    async def checked() -> AsyncIterator[bytes]:
        nonlocal stats
        total, pending = 0, []
        pending_bytes = 0
        async for chunk in chunks:
            if not chunk:
                continue
            total += len(chunk)
            if total > max_bytes:
                raise PayloadTooLarge(
                    f"the dataset is over the limit of {max_bytes} bytes", code="dataset_too_large"
                )
            pending.append(chunk)
            pending_bytes += len(chunk)
            if pending_bytes >= _BATCH_BYTES:
                # Parsing runs off the event loop, about a MiB at a time.
                await anyio.to_thread.run_sync(validator.feed, b"".join(pending))
                for item in pending:
                    yield item
                pending, pending_bytes = [], 0
        await anyio.to_thread.run_sync(validator.feed, b"".join(pending))
        stats = validator.finish()
        for item in pending:
            yield item

    try:
        blob = await store.put_stream(checked(), expected_sha256=None, max_bytes=max_bytes)
    except ArtifactTooLarge:
        raise PayloadTooLarge(
            f"the dataset is over the limit of {max_bytes} bytes", code="dataset_too_large"
        ) from None
    assert stats is not None
    return blob, stats[0], stats[1]


def validate_name(name: str) -> str:
    if (
        not name
        or len(name) > 255
        or any(not c.isprintable() for c in name)
        or name != name.strip()
    ):
        raise InvalidRequest(
            f"dataset name {name[:300]!r} must be 1 to 255 printable characters without "
            "surrounding spaces",
            code="invalid_dataset_name",
        )
    return name


def register_dataset(
    session: Session, *, name: str | None, blob: Blob, rows: int, keys: list[str]
) -> Dataset:
    """Record a stored, validated JSONL blob as a dataset."""
    dataset_id = new_id("ds")
    row = models.Dataset(
        id=dataset_id,
        name=validate_name(name) if name else dataset_id,
        sha256=blob.sha256,
        size=blob.size,
        rows=rows,
        keys=keys,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return to_dataset(row)


def dataset_row(session: Session, dataset_id: str) -> models.Dataset:
    row = session.get(models.Dataset, dataset_id)
    if row is None:
        raise NotFound(f"no dataset {dataset_id!r}")
    return row


def get_dataset(session: Session, dataset_id: str) -> Dataset:
    return to_dataset(dataset_row(session, dataset_id))


def list_datasets(session: Session, *, limit: int, cursor: str | None) -> Page[Dataset]:
    """Newest first, keyed on the time-ordered id."""
    rows, next_cursor = newest_first(session, select(models.Dataset), models.Dataset.id,
                                     limit=limit, cursor=cursor)
    return Page[Dataset](items=[to_dataset(r) for r in rows], next_cursor=next_cursor)


def check_conversations(store: ArtifactStore, row: models.Dataset, messages_key: str) -> None:
    """Check a stored dataset's conversations under a key the upload did not check."""
    validator = JsonlValidator(messages_key=messages_key)
    with store.open(row.sha256) as handle:
        while chunk := handle.read(_BATCH_BYTES):
            validator.feed(chunk)
    validator.finish()


def check_data_paths(
    session: Session, spec: JobSpec, roots: Sequence[Path], store: ArtifactStore | None = None
) -> None:
    """At submit: each `ds_…` entry exists and its rows are all conversations (under
    data.messages_key) or all have prompt_key and answer_key; a worker-local path lies under
    an allowed root; `demo` is the bundled set. Conversations under a key other than
    `messages` are checked here (with `store`), the upload having checked `messages` only."""
    data = spec.data
    for field_name in ("train_data_paths", "val_data_paths"):
        for index, entry in enumerate(getattr(data, field_name) or []):
            loc = f"data.{field_name}.{index}"
            if entry == "demo":
                continue
            if not has_prefix(entry, "ds"):
                reason = outside_roots(entry, roots)
                if reason:
                    detail = (f"{loc}: {entry!r} is neither `demo` nor a dataset id (ds_…), and "
                              f"as a worker-local file it {reason} (LORAPLANE_DATA_PATH_ROOTS)")
                    raise InvalidSpec(detail, code="data_path_not_allowed",
                                      errors=[{"loc": loc, "msg": detail,
                                               "type": "data_path_not_allowed"}])
                continue
            row = session.get(models.Dataset, entry)
            if row is None:
                detail = f"{loc}: no dataset {entry!r}; upload it with POST /datasets first"
                raise InvalidSpec(
                    detail,
                    code="unknown_dataset",
                    errors=[{"loc": loc, "msg": detail, "type": "unknown_dataset"}],
                )
            if data.messages_key in row.keys:
                if data.messages_key != MESSAGES_KEY and store is not None:
                    try:
                        check_conversations(store, row, data.messages_key)
                    except InvalidDataset as exc:
                        problem = exc.message.removesuffix("; nothing was stored")
                        detail = f"{loc}: dataset {entry} ({row.name}): {problem}"
                        raise InvalidDataset(detail, errors=[
                            {"loc": loc, "msg": detail, "type": "invalid_conversation"}
                        ]) from None
                continue
            for key_field in ("prompt_key", "answer_key"):
                key = getattr(data, key_field)
                if key not in row.keys:
                    detail = (
                        f"data.{key_field} is {key!r}, but not every row of dataset {entry} "
                        f"({row.name}) has that key, nor data.messages_key "
                        f"{data.messages_key!r} (conversations); keys in every row: "
                        f"{list(row.keys)}"
                    )
                    raise InvalidSpec(
                        detail,
                        code="dataset_missing_key",
                        errors=[
                            {
                                "loc": f"data.{key_field}",
                                "msg": detail,
                                "type": "dataset_missing_key",
                            }
                        ],
                    )
