"""Downloading blobs: resumable, verified by sha256, renamed into place only when whole.

The code lives in the client package (`loraplane_client.fetch`), which SDK users and the
worker share; this module gives it the service's error types: a bad digest is an
`InvalidDigest` and a mismatch a `service.artifacts.ChecksumMismatch` (both ServiceErrors).
"""

from __future__ import annotations

from pathlib import Path

import httpx
from loraplane_client import fetch as _fetch

from service.artifacts import ChecksumMismatch, validate_sha256

__all__ = ["BlobCache", "ChecksumMismatch", "download_file"]

Progress = _fetch.Progress


def download_file(
    client: httpx.Client,
    url: str,
    dest: Path,
    *,
    sha256: str,
    size: int | None = None,
    progress: Progress | None = None,
) -> Path:
    """Download `url` to `dest`, resuming `dest.part`; verify sha256, then rename into place.

    Network errors propagate and leave the partial file for the next call to resume; a
    checksum or size mismatch deletes it and raises `ChecksumMismatch`.
    """
    validate_sha256(sha256)
    try:
        return _fetch.download_file(client, url, dest, sha256=sha256, size=size,
                                    progress=progress)
    except _fetch.ChecksumMismatch as exc:
        raise ChecksumMismatch(str(exc)) from None


class BlobCache(_fetch.BlobCache):
    """Verified downloads kept by sha256 under `root/ab/cdef…`, so each hash is fetched once."""

    def path(self, sha256: str) -> Path:
        validate_sha256(sha256)
        return super().path(sha256)

    def fetch(
        self,
        client: httpx.Client,
        url: str,
        sha256: str,
        size: int | None = None,
        progress: Progress | None = None,
    ) -> Path:
        try:
            return super().fetch(client, url, sha256, size, progress)
        except _fetch.ChecksumMismatch as exc:
            raise ChecksumMismatch(str(exc)) from None
