"""Downloading files: resumable, verified by sha256, renamed into place only when whole.

Hand-written (not generated); the worker downloads its inputs with the same code. A server
that keeps its blobs in object storage may answer with a redirect to a presigned URL: it is
followed once, without the bearer token (the URL carries its own signature), and the bytes
are verified against the same sha256.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import httpx

__all__ = ["BlobCache", "ChecksumMismatch", "Progress", "download_file", "validate_sha256"]

log = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
Progress = Callable[[int, int], None]
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class ChecksumMismatch(Exception):
    """The bytes do not hash to the sha256 (or do not have the size) they were announced with."""


def validate_sha256(sha256: str) -> str:
    """Return `sha256` if it is 64 lowercase hex digits, else raise ValueError."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a sha256 (64 lowercase hex digits): {str(sha256)[:80]!r}")
    return sha256


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, as lowercase hex."""
    digest = hashlib.sha256()
    _hash_file(Path(path), digest)
    return digest.hexdigest()


class _RestartFromZero(Exception):
    """The partial file cannot be continued; download the whole file instead."""


def download_file(
    client: httpx.Client,
    url: str,
    dest: Path,
    *,
    sha256: str,
    size: int | None = None,
    progress: Progress | None = None,
) -> Path:
    """Download `url` to `dest`, resuming `dest.part` if present; verify sha256, then rename.

    `progress(done, total)` is called as bytes arrive (total is 0 while unknown). Network
    errors propagate and leave the partial file for the next call to resume; a checksum
    or size mismatch deletes it and raises `ChecksumMismatch`.
    """
    validate_sha256(sha256)
    dest = Path(dest)
    part = dest.with_suffix(dest.suffix + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if part.exists() and part.stat().st_size > 0:
        try:
            return _download(client, url, dest, part, sha256, size, progress, resume=True)
        except (_RestartFromZero, ChecksumMismatch) as exc:
            # Bytes left by an earlier try may be what is wrong: one fresh try settles it.
            log.warning("cannot resume %s (%s); downloading it whole", url, exc)
    part.unlink(missing_ok=True)
    try:
        return _download(client, url, dest, part, sha256, size, progress, resume=False)
    except _RestartFromZero as exc:
        part.unlink(missing_ok=True)
        raise ChecksumMismatch(f"{url}: {exc}") from None


def _download(
    client: httpx.Client,
    url: str,
    dest: Path,
    part: Path,
    sha256: str,
    size: int | None,
    progress: Progress | None,
    *,
    resume: bool,
) -> Path:
    digest = hashlib.sha256()
    offset = _hash_file(part, digest) if resume else 0
    if size is not None and offset > size:
        raise _RestartFromZero(f"partial file holds {offset} bytes, more than {size}")
    if size is None or offset < size:
        # Ranges count bytes as sent, so ask for them unencoded.
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers |= {"Range": f"bytes={offset}-", "If-Range": f'"{sha256}"'}
        with _get(client, url, headers) as response:
            if response.status_code == 416:
                raise _RestartFromZero(f"server refused range {offset}- (416)")
            response.raise_for_status()
            if offset and response.status_code == 200:
                log.info("server sent all of %s instead of a range; starting over", url)
                offset, digest = 0, hashlib.sha256()
            elif response.status_code == 206:
                _check_content_range(response.headers.get("content-range", ""), offset)
            total = size or _total_size(response, offset)
            with open(part, "ab" if offset else "wb") as f:
                done = offset
                if progress:
                    progress(done, total)
                for chunk in response.iter_raw():  # as it arrives: a cut loses nothing
                    done += len(chunk)
                    if size is not None and done > size:
                        _fail(part, f"{url} sent more than the expected {size} bytes")
                    f.write(chunk)
                    digest.update(chunk)
                    if progress:
                        progress(done, total)
                f.flush()
                os.fsync(f.fileno())
            offset = done
    if size is not None and offset != size:
        _fail(part, f"{url} gave {offset} bytes, expected {size}")
    if digest.hexdigest() != sha256:
        _fail(part, f"{url} hashes to {digest.hexdigest()}, expected {sha256}")
    os.replace(part, dest)
    log.info("downloaded %s to %s (%d bytes)", url, dest, offset)
    return dest


@contextmanager
def _get(client: httpx.Client, url: str, headers: dict[str, str]) -> Iterator[httpx.Response]:
    """A streamed GET that follows one redirect to another store (e.g. a presigned S3 URL):
    the token stays behind, and so does If-Range (the store's ETag is not our sha256; its
    bytes are immutable, so a plain Range is safe)."""
    response = client.send(client.build_request("GET", url, headers=headers), stream=True)
    try:
        if response.is_redirect and "location" in response.headers:
            target = response.url.join(response.headers["location"])
            response.close()
            request = httpx.Request("GET", target, headers={
                k: v for k, v in headers.items() if k.lower() != "if-range"})
            response = client.send(request, stream=True)  # not client.build_request: no token
        yield response
    finally:
        response.close()


def _fail(part: Path, message: str) -> NoReturn:
    part.unlink(missing_ok=True)
    raise ChecksumMismatch(message)


def _hash_file(path: Path, digest: hashlib._Hash) -> int:
    """Feed a file to `digest`; return its length."""
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            digest.update(chunk)
            n += len(chunk)
    return n


def _check_content_range(value: str, offset: int) -> None:
    m = _CONTENT_RANGE.fullmatch(value.strip())
    if m is None or int(m.group(1)) != offset:
        raise _RestartFromZero(f"asked for bytes {offset}- but got Content-Range {value!r}")


def _total_size(response: httpx.Response, offset: int) -> int:
    """The whole file's size as the response tells it, or 0 if it does not."""
    m = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
    if m and m.group(3) != "*":
        return int(m.group(3))
    length = response.headers.get("content-length")
    if length is None or not length.isdigit():
        return 0
    return int(length) + (offset if response.status_code == 206 else 0)


class BlobCache:
    """Verified downloads kept by sha256 under `root/ab/cdef…`, so each hash is fetched once."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the blob lives (or will) in the cache."""
        validate_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:]

    def fetch(
        self,
        client: httpx.Client,
        url: str,
        sha256: str,
        size: int | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """The cached file for `sha256`, downloading and verifying it first if needed."""
        path = self.path(sha256)
        if self._holds(path, size):
            return path
        path.parent.mkdir(exist_ok=True)
        # Processes sharing a cache take turns per hash, so two never append to one partial file.
        with open(path.with_name(path.name + ".lock"), "a") as lock:
            _lock_exclusive(lock)
            if self._holds(path, size):
                return path
            return download_file(client, url, path, sha256=sha256, size=size, progress=progress)

    @staticmethod
    def _holds(path: Path, size: int | None) -> bool:
        return path.is_file() and (size is None or path.stat().st_size == size)


def _lock_exclusive(f: object) -> None:
    """An advisory lock held until `f` closes (POSIX; elsewhere, no lock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return
    fcntl.flock(f, fcntl.LOCK_EX)
