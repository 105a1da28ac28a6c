"""The S3 artifact store against a real S3-compatible server (moto's, on loopback): the
checks of the local store, atomic visibility, interrupted uploads, presigned downloads."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest

from service import artifacts_s3
from service.artifacts_s3 import S3ArtifactStore, parse_s3_url
from service.errors import ArtifactTooLarge, ChecksumMismatch, NotFound
from tests.s3 import new_bucket, s3_endpoint  # noqa: F401  (fixture)

MiB = 1024 * 1024


@pytest.fixture
def store(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3ArtifactStore:  # noqa: F811
    monkeypatch.setattr(artifacts_s3, "PART_SIZE", 5 * MiB)  # S3's smallest part: few bytes
    return S3ArtifactStore(f"s3://{new_bucket(s3_endpoint)}/lp", presign_seconds=120)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def keys(store: S3ArtifactStore) -> list[str]:
    listing = store.client.list_objects_v2(Bucket=store.bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def open_uploads(store: S3ArtifactStore) -> list[str]:
    return [u["Key"] for u in store.client.list_multipart_uploads(Bucket=store.bucket)
            .get("Uploads", [])]


def test_blobs_round_trip_whole_and_by_range(store: S3ArtifactStore) -> None:
    data = os.urandom(12 * MiB + 5)  # three parts
    blob = store.put_chunks([data[i : i + MiB] for i in range(0, len(data), MiB)],
                            expected_sha256=sha(data))
    assert (blob.sha256, blob.size) == (sha(data), len(data))
    assert store.exists(blob.sha256) and store.size(blob.sha256) == len(data)
    assert b"".join(store.iter_range(blob.sha256, 0, len(data) - 1)) == data
    assert b"".join(store.iter_range(blob.sha256, 7 * MiB, 7 * MiB + 99)) == data[7 * MiB:][:100]
    with store.open(blob.sha256) as f:
        assert f.read(10) == data[:10]
    assert keys(store) == [f"lp/blobs/{blob.sha256[:2]}/{blob.sha256[2:]}"]
    assert open_uploads(store) == []


def test_a_blob_whose_digest_is_learnt_at_the_end_is_copied_into_place(
        store: S3ArtifactStore) -> None:
    small, large = b"tiny", os.urandom(11 * MiB)
    for data in (small, large):
        assert store.put_bytes(data).sha256 == sha(data)
    assert keys(store) == sorted(f"lp/blobs/{sha(d)[:2]}/{sha(d)[2:]}" for d in (small, large))


def test_a_wrong_digest_or_size_leaves_nothing_visible(store: S3ArtifactStore) -> None:
    data = os.urandom(6 * MiB)
    with pytest.raises(ChecksumMismatch):
        store.put_bytes(data, expected_sha256=sha(b"other"))
    with pytest.raises(ChecksumMismatch):
        store.put_chunks([data], expected_sha256=sha(data), expected_size=len(data) - 1)
    with pytest.raises(ArtifactTooLarge):
        store.put_chunks([data], max_bytes=MiB)
    assert keys(store) == [] and open_uploads(store) == []
    assert not store.exists(sha(data))


def test_an_upload_cut_halfway_leaves_nothing_visible(store: S3ArtifactStore) -> None:
    data = os.urandom(12 * MiB)

    async def cut() -> AsyncIterator[bytes]:
        yield data[: 6 * MiB]  # one part is sent...
        raise ConnectionResetError("client went away")  # ...then the client is gone

    async def upload() -> None:
        await store.put_stream(cut(), expected_sha256=sha(data), max_bytes=len(data))

    with pytest.raises(ConnectionResetError):
        anyio.run(upload)
    assert keys(store) == [] and open_uploads(store) == []


def test_uploads_a_crash_left_behind_are_cleaned_up(
        store: S3ArtifactStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.artifacts import StreamCheck

    data = os.urandom(6 * MiB)
    crashed = artifacts_s3._Upload(store, StreamCheck(sha(data), None, None))
    crashed.add([data])  # a part is in; the process dies before completing or aborting
    leftover = artifacts_s3._Upload(store, StreamCheck(None, None, None))
    leftover.add([os.urandom(6 * MiB)])
    # ...and one died between completing its temp object and copying it into place
    store.client.put_object(Bucket=store.bucket, Key="lp/tmp/orphan", Body=b"x")
    assert len(open_uploads(store)) == 2 and keys(store) == ["lp/tmp/orphan"]
    # moto dates every multipart upload 2010: the store's own first sight of an upload keeps
    # the sweep from aborting one that may still be in flight (its request would fail)
    assert store.cleanup_temp(older_than=timedelta(hours=1)) == 0
    assert len(open_uploads(store)) == 2
    clock = artifacts_s3._clock()
    monkeypatch.setattr(artifacts_s3, "_clock", lambda: clock + 3599)
    assert store.cleanup_temp(older_than=timedelta(hours=1)) == 0
    monkeypatch.setattr(artifacts_s3, "_clock", lambda: clock + 3600)
    assert store.cleanup_temp(older_than=timedelta(hours=1)) == 2  # open for an hour: gone
    assert open_uploads(store) == [] and keys(store) == ["lp/tmp/orphan"]
    assert store.cleanup_temp(older_than=timedelta(0)) == 1
    assert keys(store) == []


def test_presigned_downloads_carry_their_expiry_and_serve_ranges(store: S3ArtifactStore) -> None:
    data = os.urandom(1000)
    blob = store.put_bytes(data)
    url = store.download_url(blob.sha256, filename="adapter model.safetensors",
                             media_type="application/octet-stream")
    assert url is not None
    query = parse_qs(urlsplit(url).query)
    # Valid 120 s from its signing time, which is now: moto serves an expired URL all the same
    # (it does not check expiry), so the signed window itself is what is checked here.
    assert query["X-Amz-Expires"] == ["120"]
    signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed).total_seconds()) < 60
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.content == data
    assert "adapter%20model.safetensors" in whole.headers["content-disposition"]
    part = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    streamed = S3ArtifactStore(f"s3://{store.bucket}/lp", presign_seconds=0)
    assert streamed.download_url(blob.sha256, filename="x", media_type="x") is None


def test_delete_refresh_and_the_sweep_of_old_blobs(store: S3ArtifactStore) -> None:
    a, b = store.put_bytes(b"a" * 10), store.put_bytes(b"b" * 10)
    assert sorted(store.stale_blobs(timedelta(0))) == sorted([a.sha256, b.sha256])
    assert list(store.stale_blobs(timedelta(hours=1))) == []
    assert store.delete(a.sha256) and not store.delete(a.sha256)
    with pytest.raises(NotFound):
        store.size(a.sha256)
    with pytest.raises(NotFound):
        list(store.iter_range(a.sha256, 0, 1))
    store.refresh(b.sha256)  # a re-put: still there, still the same bytes
    assert b"".join(store.iter_range(b.sha256, 0, 9)) == b"b" * 10


@pytest.mark.parametrize("url", ["s3://", "http://bucket/x", "s3://bucket/x?y=1", "bucket/x"])
def test_artifacts_urls_that_name_no_bucket_are_refused(url: str, tmp_path) -> None:
    from pydantic import ValidationError

    from service.settings import Settings

    with pytest.raises(ValueError, match="s3://bucket"):
        parse_s3_url(url)
    with pytest.raises(ValidationError, match="artifacts_url"):  # at start-up, not later
        Settings(data_dir=tmp_path, artifacts_url=url)


def test_a_re_put_of_a_stored_blob_sends_no_bytes_and_one_lookup(store: S3ArtifactStore) -> None:
    data = os.urandom(2000)
    blob = store.put_bytes(data)
    calls: list[str] = []
    store.client.meta.events.register("before-call.s3.*",
                                      lambda model, **_: calls.append(model.name))

    async def stream() -> AsyncIterator[bytes]:
        yield data

    async def reput() -> None:
        again = await store.put_stream(stream(), expected_sha256=blob.sha256,
                                       max_bytes=len(data))
        assert again == blob

    anyio.run(reput)
    assert calls == ["HeadObject", "CopyObject"]  # the lookup, and the age refresh
