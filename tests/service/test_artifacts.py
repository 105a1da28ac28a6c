"""The local artifact store: verified, atomic, bounded-memory writes and reads by sha256."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from service.artifacts import (
    ArtifactTooLarge,
    Blob,
    ChecksumMismatch,
    InvalidDigest,
    LocalArtifactStore,
    TruncatedArtifact,
)
from service.errors import NotFound
from tests import REPO

MiB = 1024 * 1024


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def visible_blobs(store: LocalArtifactStore) -> list[Path]:
    return [p for p in store.blobs_dir.rglob("*") if p.is_file()]


def temp_files(store: LocalArtifactStore) -> list[Path]:
    return list(store.tmp_dir.iterdir())


async def agen(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


class Counting:
    """A chunk source that counts how many chunks were pulled from it."""

    def __init__(self, chunks: Iterator[bytes]):
        self.chunks, self.pulled = chunks, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.pulled += 1
            yield chunk


def test_put_bytes_round_trip_and_layout(store: LocalArtifactStore) -> None:
    data = os.urandom(3 * MiB + 17)
    blob = store.put_bytes(data)
    digest = sha(data)
    assert blob == Blob(digest, len(data))
    assert store.exists(digest) and store.size(digest) == len(data)
    path = store.local_path(digest)
    assert path == store.root / "blobs" / digest[:2] / digest[2:]
    assert path.read_bytes() == data
    with store.open(digest) as f:
        assert f.read() == data
    assert b"".join(store.iter_range(digest, 0, len(data) - 1)) == data
    assert b"".join(store.iter_range(digest, 5, MiB + 9, chunk_size=4096)) == data[5 : MiB + 10]
    assert temp_files(store) == []


def test_put_file(store: LocalArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "adapter_model.safetensors"
    src.write_bytes(os.urandom(2 * MiB + 1))
    blob = store.put_file(src, expected_sha256=sha(src.read_bytes()))
    assert store.local_path(blob.sha256).read_bytes() == src.read_bytes()


def test_put_stream_of_64_mib_uses_bounded_memory(store: LocalArtifactStore) -> None:
    digest = hashlib.sha256()

    async def fresh_chunks() -> AsyncIterator[bytes]:
        for _ in range(64):
            chunk = os.urandom(MiB)  # a new object each time, so keeping any would show
            digest.update(chunk)
            yield chunk

    async def put() -> Blob:
        return await store.put_stream(
            fresh_chunks(), expected_sha256=None, max_bytes=100 * MiB, expected_size=64 * MiB
        )

    tracemalloc.start()
    try:
        blob = anyio.run(put)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert blob == Blob(digest.hexdigest(), 64 * MiB)
    assert store.size(blob.sha256) == 64 * MiB
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB while storing 64 MiB"


def test_checksum_mismatch_is_refused_and_leaves_nothing(store: LocalArtifactStore) -> None:
    data = b"x" * 1000
    wrong = sha(b"something else")
    with pytest.raises(ChecksumMismatch) as err:
        anyio.run(
            lambda: store.put_stream(agen(iter([data])), expected_sha256=wrong, max_bytes=MiB)
        )
    assert err.value.code == "checksum_mismatch"
    assert not store.exists(wrong) and not store.exists(sha(data))
    assert visible_blobs(store) == [] and temp_files(store) == []


def test_truncated_stream_is_refused_and_leaves_nothing(store: LocalArtifactStore) -> None:
    data = os.urandom(10_000)
    half = agen(iter([data[:5000]]))
    with pytest.raises(TruncatedArtifact) as err:
        anyio.run(
            lambda: store.put_stream(
                half, expected_sha256=None, max_bytes=MiB, expected_size=len(data)
            )
        )
    assert err.value.code == "truncated_artifact"
    # Without a size, the announced sha256 is what catches a short stream.
    with pytest.raises(ChecksumMismatch):
        store.put_chunks([data[:5000]], expected_sha256=sha(data))
    assert visible_blobs(store) == [] and temp_files(store) == []


def test_longer_than_announced_is_refused(store: LocalArtifactStore) -> None:
    with pytest.raises(ChecksumMismatch):
        store.put_chunks([b"abc", b"def"], expected_size=4)
    assert visible_blobs(store) == [] and temp_files(store) == []


def test_too_large_is_refused_as_soon_as_the_limit_is_passed(store: LocalArtifactStore) -> None:
    def endless() -> Iterator[bytes]:
        while True:
            yield b"\0" * MiB

    source = Counting(endless())
    with pytest.raises(ArtifactTooLarge) as err:
        anyio.run(lambda: store.put_stream(source, expected_sha256=None, max_bytes=3 * MiB))
    assert err.value.code == "artifact_too_large"
    assert source.pulled == 4  # the chunk that crossed the limit, and not one more
    assert visible_blobs(store) == [] and temp_files(store) == []
    # An announced size over the limit is refused before reading anything.
    source = Counting(endless())
    with pytest.raises(ArtifactTooLarge):
        anyio.run(
            lambda: store.put_stream(
                source, expected_sha256=None, max_bytes=MiB, expected_size=2 * MiB
            )
        )
    assert source.pulled == 0


def test_failure_midway_leaves_no_blob(store: LocalArtifactStore) -> None:
    data = os.urandom(4 * MiB)

    async def dies_midway() -> AsyncIterator[bytes]:
        yield data[: 2 * MiB]
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        anyio.run(
            lambda: store.put_stream(dies_midway(), expected_sha256=sha(data), max_bytes=8 * MiB)
        )
    assert not store.exists(sha(data))
    assert visible_blobs(store) == [] and temp_files(store) == []


def test_killed_writer_leaves_only_a_temp_file_that_cleanup_removes(
    store: LocalArtifactStore,
) -> None:
    data_sha = "0" * 64
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from service.artifacts import LocalArtifactStore
        def chunks():
            for _ in range(3):
                yield b"z" * 65536
            time.sleep(60)  # killed here, halfway through
            yield b"never"
        store = LocalArtifactStore(Path({str(store.root)!r}))
        store.put_chunks(chunks(), expected_sha256={data_sha!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        deadline = time.monotonic() + 15
        while not any(p.stat().st_size >= 3 * 65536 for p in temp_files(store)):
            assert proc.poll() is None, "writer exited early"
            assert time.monotonic() < deadline, "writer never wrote"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert visible_blobs(store) == [] and not store.exists(data_sha)
    assert len(temp_files(store)) == 1
    assert store.cleanup_temp(older_than=timedelta(hours=1)) == 0  # still fresh: kept
    assert store.cleanup_temp(older_than=timedelta(0)) == 1
    assert temp_files(store) == []


def test_re_put_is_a_cheap_no_op(store: LocalArtifactStore) -> None:
    data = os.urandom(100_000)
    first = store.put_bytes(data)
    before = store.local_path(first.sha256).stat()
    assert store.put_bytes(data) == first
    source = Counting(iter([data]))
    again = anyio.run(lambda: store.put_stream(source, expected_sha256=first.sha256, max_bytes=MiB))
    assert again == first and source.pulled == 0  # known hash: the stream is not even read
    after = store.local_path(first.sha256).stat()
    assert after.st_ino == before.st_ino  # the same file, not rewritten
    assert after.st_mtime_ns >= before.st_mtime_ns  # its age restarts: the sweep spares it
    assert temp_files(store) == []


def test_stored_blobs_are_read_only(store: LocalArtifactStore) -> None:
    blob = store.put_bytes(b"weights")
    assert store.local_path(blob.sha256).stat().st_mode & 0o222 == 0


@pytest.mark.parametrize(
    "bad", ["../../etc/passwd", "A" * 64, "a" * 63, "a" * 65, "g" * 64, "", "ab/" + "c" * 61]
)
def test_malformed_sha256_is_refused_everywhere(store: LocalArtifactStore, bad: str) -> None:
    for call in (
        lambda: store.exists(bad),
        lambda: store.size(bad),
        lambda: store.open(bad),
        lambda: store.iter_range(bad, 0, 1),
        lambda: store.delete(bad),
        lambda: store.local_path(bad),
        lambda: store.put_bytes(b"x", expected_sha256=bad),
    ):
        with pytest.raises(InvalidDigest):
            call()


def test_missing_blob_and_delete(store: LocalArtifactStore) -> None:
    blob = store.put_bytes(b"adapter")
    assert store.delete(blob.sha256) is True
    assert store.delete(blob.sha256) is False
    assert not store.exists(blob.sha256)
    for call in (
        lambda: store.size(blob.sha256),
        lambda: store.open(blob.sha256),
        lambda: store.iter_range(blob.sha256, 0, 1),
        lambda: store.local_path(blob.sha256),
    ):
        with pytest.raises(NotFound):
            call()
