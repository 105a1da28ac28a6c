"""The artifact store: immutable blobs addressed by the sha256 of their bytes.

Two backends behind one interface: `LocalArtifactStore` (the embedded default) and
`service.artifacts_s3.S3ArtifactStore` (S3-compatible object storage); `open_store` picks
the one the settings name.

`LocalArtifactStore` keeps blob `ab12…` at `root/blobs/ab/12…` and writes through temp
files in `root/tmp`: bytes are hashed while they stream to disk, checked, fsynced and
renamed into place, so a blob is either complete and verified or not there at all.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, Protocol

import anyio.to_thread

from service.errors import (
    ArtifactTooLarge,
    ChecksumMismatch,
    InvalidDigest,
    NotFound,
    TruncatedArtifact,
)
from service.settings import Settings

log = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Blob:
    """A stored blob: its sha256 (lowercase hex) and its size in bytes."""

    sha256: str
    size: int


def validate_sha256(sha256: str) -> str:
    """Return `sha256` if it is 64 lowercase hex digits, else raise `InvalidDigest`."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise InvalidDigest(f"not a sha256 (64 lowercase hex digits): {str(sha256)[:80]!r}")
    return sha256


class ArtifactStore(ABC):
    """Where blobs live; callers depend on this interface, never on a backend."""

    @abstractmethod
    def _writer(self, check: StreamCheck) -> BlobWriter:
        """A new writer of one blob, under `check`."""

    async def put_stream(
        self,
        chunks: AsyncIterator[bytes],
        *,
        expected_sha256: str | None,
        max_bytes: int,
        expected_size: int | None = None,
    ) -> Blob:
        """Store the bytes of an async stream, verifying size and sha256 as they arrive."""
        # The lookup is I/O (a stat, or a HEAD request to object storage): off the event loop.
        shortcut = await anyio.to_thread.run_sync(
            self._shortcut, expected_sha256, max_bytes, expected_size)
        if shortcut is not None:
            return shortcut
        writer = self._writer(StreamCheck(expected_sha256, max_bytes, expected_size))
        try:
            pending: list[bytes] = []
            pending_bytes = 0
            async for chunk in chunks:
                writer.check.check_room(pending_bytes + len(chunk))
                pending.append(chunk)
                pending_bytes += len(chunk)
                # Disk, network and hash work run off the event loop, a batch at a time.
                if pending_bytes >= writer.batch_bytes:
                    await anyio.to_thread.run_sync(writer.add, pending)
                    pending, pending_bytes = [], 0
            await anyio.to_thread.run_sync(writer.add, pending)
            return await anyio.to_thread.run_sync(writer.finish)
        finally:
            writer.close()

    def put_chunks(
        self,
        chunks: Iterable[bytes],
        *,
        expected_sha256: str | None = None,
        max_bytes: int | None = None,
        expected_size: int | None = None,
    ) -> Blob:
        """Store the bytes of a sync iterable, with the checks of `put_stream`."""
        if (blob := self._shortcut(expected_sha256, max_bytes, expected_size)) is not None:
            return blob
        writer = self._writer(StreamCheck(expected_sha256, max_bytes, expected_size))
        try:
            for chunk in chunks:
                writer.check.check_room(len(chunk))
                writer.add([chunk])
            return writer.finish()
        finally:
            writer.close()

    def put_file(
        self, path: Path, *, expected_sha256: str | None = None, max_bytes: int | None = None
    ) -> Blob:
        """Store a copy of a local file."""
        with open(path, "rb") as f:
            return self.put_chunks(
                iter(lambda: f.read(CHUNK_SIZE), b""),
                expected_sha256=expected_sha256,
                max_bytes=max_bytes,
            )

    def put_bytes(self, data: bytes, *, expected_sha256: str | None = None) -> Blob:
        """Store bytes held in memory."""
        return self.put_chunks([data], expected_sha256=expected_sha256)

    @abstractmethod
    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored."""

    @abstractmethod
    def size(self, sha256: str) -> int:
        """Size in bytes of a stored blob; `NotFound` if absent."""

    def stored_size(self, sha256: str) -> int | None:
        """Size in bytes of a stored blob, or None if absent (one lookup where it can be)."""
        return self.size(sha256) if self.exists(sha256) else None

    @abstractmethod
    def open(self, sha256: str) -> BinaryIO:
        """A binary file object reading the blob from the start; `NotFound` if absent."""

    def iter_range(
        self, sha256: str, start: int, end_inclusive: int, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Bytes `start..end_inclusive` of a blob, in chunks; opens (or 404s) at call time."""
        if start < 0 or end_inclusive < start:
            raise ValueError(f"bad byte range {start}-{end_inclusive}")
        f = self.open(sha256)
        return _read_range(f, start, end_inclusive - start + 1, chunk_size)

    @abstractmethod
    def delete(self, sha256: str) -> bool:
        """Remove a blob; True if it was there."""

    def local_path(self, sha256: str) -> Path | None:
        """The blob's path on local disk, or None for stores that are not local."""
        return None

    def download_url(self, sha256: str, *, filename: str, media_type: str) -> str | None:
        """A short-lived URL clients may GET the blob from directly, or None: stream it."""
        return None

    def refresh(self, sha256: str) -> None:
        """Mark a stored blob as written now (a re-put): the blob sweep then spares it."""

    def _shortcut(
        self, expected_sha256: str | None, max_bytes: int | None, expected_size: int | None
    ) -> Blob | None:
        """The stored blob when the caller names one we already hold, so nothing is read."""
        if expected_sha256 is None:
            return None
        size = self.stored_size(expected_sha256)
        if size is None:
            return None
        if max_bytes is not None and size > max_bytes:
            raise ArtifactTooLarge(f"artifact of {size} bytes exceeds the limit of {max_bytes}")
        if expected_size is not None and size != expected_size:
            raise ChecksumMismatch(
                f"blob {expected_sha256} has {size} bytes, not the announced {expected_size}"
            )
        self.refresh(expected_sha256)
        return Blob(expected_sha256, size)

    def cleanup_temp(self, older_than: timedelta = timedelta(hours=1)) -> int:
        """Remove temp files left by interrupted writes; returns how many were removed."""
        return 0

    def stale_blobs(self, older_than: timedelta) -> Iterator[str]:
        """Blobs neither written nor re-put for `older_than` (candidates for collection)."""
        return iter(())


def _read_range(f: BinaryIO, start: int, length: int, chunk_size: int) -> Iterator[bytes]:
    with f:
        f.seek(start)
        while length > 0:
            chunk = f.read(min(chunk_size, length))
            if not chunk:
                raise OSError(f"blob ended {length} bytes early")
            length -= len(chunk)
            yield chunk


class StreamCheck:
    """The checks every store applies to bytes as they arrive: the size limit, the announced
    size, and the sha256 (running, so nothing is read twice)."""

    def __init__(
        self, expected_sha256: str | None, max_bytes: int | None, expected_size: int | None
    ):
        self.expected_sha256 = (
            validate_sha256(expected_sha256) if expected_sha256 is not None else None
        )
        self.max_bytes = max_bytes
        self.expected_size = expected_size
        if max_bytes is not None and expected_size is not None and expected_size > max_bytes:
            raise ArtifactTooLarge(
                f"artifact of {expected_size} bytes exceeds the limit of {max_bytes}"
            )
        self.hash = hashlib.sha256()
        self.nbytes = 0

    def check_room(self, n: int) -> None:
        """Raise before writing if `n` more bytes would pass a limit."""
        if self.max_bytes is not None and self.nbytes + n > self.max_bytes:
            raise ArtifactTooLarge(f"artifact exceeds the limit of {self.max_bytes} bytes")
        if self.expected_size is not None and self.nbytes + n > self.expected_size:
            raise ChecksumMismatch(
                f"artifact is longer than the announced {self.expected_size} bytes"
            )

    def update(self, chunk: bytes) -> None:
        """Count and hash a chunk whose size has already been checked."""
        self.hash.update(chunk)
        self.nbytes += len(chunk)

    def verify(self) -> Blob:
        """The blob the whole stream makes; raises if it is short or hashes otherwise."""
        if self.expected_size is not None and self.nbytes < self.expected_size:
            raise TruncatedArtifact(
                f"stream ended after {self.nbytes} of {self.expected_size} announced bytes"
            )
        sha256 = self.hash.hexdigest()
        if self.expected_sha256 is not None and sha256 != self.expected_sha256:
            raise ChecksumMismatch(
                f"content hashes to {sha256}, not the announced {self.expected_sha256}"
            )
        return Blob(sha256, self.nbytes)


class BlobWriter(Protocol):
    """One blob on its way into a store: `add` takes checked chunks, `finish` verifies the
    whole stream and only then makes the blob visible, `close` (always called) drops what an
    unfinished write left."""

    check: StreamCheck
    batch_bytes: int  # how much `put_stream` gathers before handing it to `add`

    def add(self, chunks: Iterable[bytes]) -> None: ...

    def finish(self) -> Blob: ...

    def close(self) -> None: ...


class _TempBlob:
    """A blob being written to local disk: a temp file renamed into place once verified."""

    batch_bytes = CHUNK_SIZE

    def __init__(self, store: LocalArtifactStore, check: StreamCheck):
        self.store, self.check = store, check
        self.path = store.tmp_dir / f"{uuid.uuid4().hex}.part"
        # Mode 0o444 (less the umask): stored blobs are read-only, as git's objects are.
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)

    def add(self, chunks: Iterable[bytes]) -> None:
        """Hash and append chunks whose size has already been checked."""
        for chunk in chunks:
            self.check.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(self._fd, view) :]

    def finish(self) -> Blob:
        """Check the whole stream, fsync, and rename the temp file into place."""
        blob = self.check.verify()
        os.fsync(self._fd)
        dest = self.store._path(blob.sha256)
        if dest.exists():
            log.debug("blob %s already stored", blob.sha256)
            self.store.refresh(blob.sha256)
            return blob
        if not dest.parent.is_dir():
            dest.parent.mkdir(exist_ok=True)
            _fsync_dir(self.store.blobs_dir)
        os.replace(self.path, dest)
        _fsync_dir(dest.parent)
        log.info("stored blob %s (%d bytes)", blob.sha256, blob.size)
        return blob

    def close(self) -> None:
        """Close the descriptor and remove the temp file if it is still there."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.path.unlink(missing_ok=True)


class LocalArtifactStore(ArtifactStore):
    """Blobs as read-only files under `root/blobs/ab/cdef…`, written via `root/tmp`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.blobs_dir = self.root / "blobs"
        self.tmp_dir = self.root / "tmp"
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        validate_sha256(sha256)
        return self.blobs_dir / sha256[:2] / sha256[2:]

    def _existing(self, sha256: str) -> Path:
        path = self._path(sha256)
        if not path.is_file():
            raise NotFound(f"blob {sha256} not found")
        return path

    def refresh(self, sha256: str) -> None:
        """A re-put refreshes the blob's age, so the sweep of unreferenced blobs spares it."""
        _touch(self._path(sha256))

    def _writer(self, check: StreamCheck) -> _TempBlob:
        return _TempBlob(self, check)

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        return self._path(sha256).is_file()

    def size(self, sha256: str) -> int:
        """Size in bytes of a stored blob; `NotFound` if absent."""
        return self._existing(sha256).stat().st_size

    def open(self, sha256: str) -> BinaryIO:
        """A binary file object reading the blob from the start; `NotFound` if absent."""
        try:
            return open(self._path(sha256), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {sha256} not found") from None

    def delete(self, sha256: str) -> bool:
        """Remove a blob; True if it was there."""
        try:
            self._path(sha256).unlink()
        except FileNotFoundError:
            return False
        log.info("deleted blob %s", sha256)
        return True

    def local_path(self, sha256: str) -> Path | None:
        """The blob's file; `NotFound` if absent."""
        return self._existing(sha256)

    def cleanup_temp(self, older_than: timedelta = timedelta(hours=1)) -> int:
        """Remove temp files left by interrupted writes; returns how many were removed."""
        cutoff = time.time() - older_than.total_seconds()
        removed = 0
        for path in self.tmp_dir.glob("*.part"):
            try:
                if path.stat().st_mtime <= cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # finished or cleaned up by someone else meanwhile
        if removed:
            log.info("removed %d stale temp files from %s", removed, self.tmp_dir)
        return removed

    def stale_blobs(self, older_than: timedelta) -> Iterator[str]:
        cutoff = time.time() - older_than.total_seconds()
        for path in self.blobs_dir.glob("??/*"):
            try:
                if path.stat().st_mtime <= cutoff:
                    yield path.parent.name + path.name
            except FileNotFoundError:
                continue


def _touch(path: Path) -> None:
    """A re-put refreshes the blob's age, so the sweep of unreferenced blobs spares it."""
    try:
        os.utime(path)
    except FileNotFoundError:
        pass


def _fsync_dir(path: Path) -> None:
    """Make a rename or creation inside `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_store(settings: Settings) -> ArtifactStore:
    """The store the settings name: S3-compatible object storage, or the local disk."""
    if settings.artifacts_url:
        from service.artifacts_s3 import S3ArtifactStore  # boto3 loads only when used

        return S3ArtifactStore(settings.artifacts_url,
                               presign_seconds=settings.artifacts_presign_seconds)
    assert settings.artifacts_dir is not None
    return LocalArtifactStore(settings.artifacts_dir)
