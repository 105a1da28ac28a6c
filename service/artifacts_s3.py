"""Blobs in S3-compatible object storage (AWS S3, MinIO, Ceph, R2, …), through boto3.

`LORAPLANE_ARTIFACTS_URL=s3://bucket/prefix` selects this store; the endpoint and the
credentials come from the usual AWS settings (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, profiles, instance roles), exactly as the AWS CLI
reads them.

Blob `ab12…` is the object `prefix/blobs/ab/12…`. Bytes are hashed while they are sent, in
parts of PART_SIZE; a blob whose sha256 is announced goes straight to its own key as a
multipart upload that is completed only once the whole stream has been checked, so nothing
is visible under a digest until it is complete and verified. An upload whose digest is
learnt at the end goes to `prefix/tmp/<uuid>` first and is copied to its key once checked.
An interrupted upload leaves an unfinished multipart upload (never visible) or a temp
object; `cleanup_temp` aborts and deletes both once they are old (an unfinished upload only
once this process, too, has seen it open for that long: see `cleanup_temp`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

from service.artifacts import CHUNK_SIZE, ArtifactStore, Blob, StreamCheck, validate_sha256
from service.errors import NotFound

log = logging.getLogger(__name__)

PART_SIZE = 8 * 1024 * 1024  # S3 parts are at least 5 MiB, but for the last

_clock = time.monotonic  # when this process first saw an unfinished upload (tests move it)


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of `s3://bucket/prefix`; a clear error for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"artifacts URL {url!r} is not of the form s3://bucket[/prefix]")
    return parts.netloc, parts.path.strip("/")


class S3ArtifactStore(ArtifactStore):
    """Blobs as objects under `s3://bucket/prefix/blobs/`; see the module's docstring."""

    def __init__(self, url: str, *, client: Any | None = None, presign_seconds: int = 0):
        self.bucket, prefix = parse_s3_url(url)
        self.prefix = f"{prefix}/" if prefix else ""
        if client is None:
            import boto3  # endpoint and credentials: the usual AWS settings
            from botocore.config import Config

            client = boto3.client("s3", config=Config(signature_version="s3v4"))
        self.client = client
        self.presign_seconds = presign_seconds
        self._uploads_seen: dict[str, float] = {}  # unfinished upload id -> first listed

    # -- keys -----------------------------------------------------------------------------
    def _key(self, sha256: str) -> str:
        validate_sha256(sha256)
        return f"{self.prefix}blobs/{sha256[:2]}/{sha256[2:]}"

    def _head(self, sha256: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(sha256))
        except self.client.exceptions.ClientError as exc:
            if _status(exc) == 404:
                return None
            raise

    # -- writing --------------------------------------------------------------------------
    def _writer(self, check: StreamCheck) -> _Upload:
        return _Upload(self, check)

    def refresh(self, sha256: str) -> None:
        """A re-put refreshes the object's age (a copy onto itself), so the sweep spares it."""
        key = self._key(sha256)
        try:
            self.client.copy_object(
                Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE", Metadata={"refreshed": datetime.now(UTC).isoformat()},
            )
        except self.client.exceptions.ClientError:  # e.g. over 5 GiB: the age stays
            log.warning("could not refresh the age of blob %s", sha256, exc_info=True)

    # -- reading --------------------------------------------------------------------------
    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        return self._head(sha256) is not None

    def size(self, sha256: str) -> int:
        """Size in bytes of a stored blob; `NotFound` if absent."""
        size = self.stored_size(sha256)
        if size is None:
            raise NotFound(f"blob {sha256} not found")
        return size

    def stored_size(self, sha256: str) -> int | None:
        """Size in bytes of a stored blob, or None if absent: one HEAD request."""
        head = self._head(sha256)
        return None if head is None else int(head["ContentLength"])

    def _get(self, sha256: str, **options: Any) -> Any:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(sha256), **options)
        except self.client.exceptions.NoSuchKey:
            raise NotFound(f"blob {sha256} not found") from None

    def open(self, sha256: str) -> BinaryIO:
        """A binary file object reading the blob from the start; `NotFound` if absent."""
        return self._get(sha256)["Body"]

    def iter_range(
        self, sha256: str, start: int, end_inclusive: int, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Bytes `start..end_inclusive` of a blob, in chunks; opens (or 404s) at call time."""
        if start < 0 or end_inclusive < start:
            raise ValueError(f"bad byte range {start}-{end_inclusive}")
        body = self._get(sha256, Range=f"bytes={start}-{end_inclusive}")["Body"]
        return _chunks(body, end_inclusive - start + 1, chunk_size)

    def download_url(self, sha256: str, *, filename: str, media_type: str) -> str | None:
        """A presigned GET of the object, valid `presign_seconds`; None when presigning is off."""
        if self.presign_seconds <= 0:
            return None
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._key(sha256),
                "ResponseContentType": media_type,
                "ResponseContentDisposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            },
            ExpiresIn=self.presign_seconds,
        )

    # -- deleting -------------------------------------------------------------------------
    def delete(self, sha256: str) -> bool:
        """Remove a blob; True if it was there."""
        if not self.exists(sha256):
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self._key(sha256))
        log.info("deleted blob %s", sha256)
        return True

    def cleanup_temp(self, older_than: timedelta = timedelta(hours=1)) -> int:
        """Abort unfinished multipart uploads and delete temp objects older than `older_than`.

        An unfinished upload is aborted only if the server dates it past the cutoff *and*
        this store has listed it, still open, for `older_than` itself: a server's initiation
        date is not trusted alone (moto reports a fixed date of 2010 for every upload, and an
        object store whose clock runs ahead of this host's would date live ones too early),
        and aborting an upload in flight fails its request. After a restart the age counts
        again from the first listing, which only delays the cleanup."""
        cutoff = datetime.now(UTC) - older_than
        now = _clock()
        still_open: dict[str, float] = {}  # what `_uploads_seen` becomes: finished ones drop
        removed = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for item in page.get("Uploads", []):
                first_seen = self._uploads_seen.get(item["UploadId"], now)
                if item["Initiated"] <= cutoff and now - first_seen >= older_than.total_seconds():
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=item["Key"], UploadId=item["UploadId"])
                    removed += 1
                else:
                    still_open[item["UploadId"]] = first_seen
        self._uploads_seen = still_open
        for item in self._objects(f"{self.prefix}tmp/"):
            if item["LastModified"] <= cutoff:
                self.client.delete_object(Bucket=self.bucket, Key=item["Key"])
                removed += 1
        if removed:
            log.info("removed %d interrupted uploads from s3://%s/%s", removed, self.bucket,
                     self.prefix)
        return removed

    def stale_blobs(self, older_than: timedelta) -> Iterator[str]:
        cutoff = datetime.now(UTC) - older_than
        start = len(f"{self.prefix}blobs/")
        for item in self._objects(f"{self.prefix}blobs/"):
            if item["LastModified"] <= cutoff:
                yield item["Key"][start:].replace("/", "")

    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            yield from page.get("Contents", [])


class _Upload:
    """One blob on its way into the bucket: a part buffer, the multipart upload once the
    bytes outgrow one part, and the stream's checks; completed only when they pass."""

    def __init__(self, store: S3ArtifactStore, check: StreamCheck):
        self.batch_bytes = PART_SIZE
        self.store, self.check = store, check
        known = check.expected_sha256
        self.key = store._key(known) if known else f"{store.prefix}tmp/{uuid.uuid4().hex}"
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []

    def add(self, chunks: Iterable[bytes]) -> None:
        """Hash and buffer chunks whose size was checked; send each full part."""
        for chunk in chunks:
            self.check.update(chunk)
            self.buffer += chunk
            while len(self.buffer) >= PART_SIZE:
                self._send_part(bytes(self.buffer[:PART_SIZE]))
                del self.buffer[:PART_SIZE]

    def _send_part(self, data: bytes) -> None:
        client, bucket = self.store.client, self.store.bucket
        if self.upload_id is None:
            self.upload_id = client.create_multipart_upload(Bucket=bucket, Key=self.key)["UploadId"]
        number = len(self.parts) + 1
        reply = client.upload_part(Bucket=bucket, Key=self.key, UploadId=self.upload_id,
                                   PartNumber=number, Body=data)
        self.parts.append({"PartNumber": number, "ETag": reply["ETag"]})

    def finish(self) -> Blob:
        """Verify the whole stream, then make the object visible under its digest."""
        blob = self.check.verify()  # raises before anything becomes visible
        client, bucket = self.store.client, self.store.bucket
        final = self.store._key(blob.sha256)
        if self.upload_id is None:  # one part: a single PUT, straight to its key
            client.put_object(Bucket=bucket, Key=final, Body=bytes(self.buffer))
        else:
            if self.buffer or not self.parts:
                self._send_part(bytes(self.buffer))
            client.complete_multipart_upload(Bucket=bucket, Key=self.key, UploadId=self.upload_id,
                                             MultipartUpload={"Parts": self.parts})
            self.upload_id = None
            if self.key != final:
                client.copy({"Bucket": bucket, "Key": self.key}, bucket, final)
                client.delete_object(Bucket=bucket, Key=self.key)
        log.info("stored blob %s (%d bytes) in s3://%s", blob.sha256, blob.size, bucket)
        return blob

    def close(self) -> None:
        """Drop an unfinished upload (nothing once finished): its parts never become an object."""
        if self.upload_id is not None:
            try:
                self.store.client.abort_multipart_upload(
                    Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id)
            except Exception:  # cleanup_temp aborts it later
                log.warning("could not abort upload %s", self.upload_id, exc_info=True)
            self.upload_id = None


def _chunks(body: Any, length: int, chunk_size: int) -> Iterator[bytes]:
    with body:
        for chunk in body.iter_chunks(chunk_size):
            length -= len(chunk)
            yield chunk
    if length > 0:
        raise OSError(f"blob ended {length} bytes early")


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
