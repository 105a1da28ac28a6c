"""Resumable, verified downloads against a real uvicorn server on a loopback port."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from loraplane_client.fetch import BlobCache, ChecksumMismatch, download_file

from api.downloads import blob_response
from api.errors import install as install_error_handlers
from service.artifacts import LocalArtifactStore

MiB = 1024 * 1024
SIZE = 4 * MiB + 321


@dataclass
class Server:
    url: str
    store: LocalArtifactStore
    data: bytes
    sha256: str
    # (path, Range header, status) of every request, in order
    requests: list[tuple[str, str | None, int]] = field(default_factory=list)

    def requests_to(self, prefix: str) -> list[tuple[str | None, int]]:
        return [(rng, status) for path, rng, status in self.requests if path.startswith(prefix)]


def make_app(server: Server) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    store, cut_once = server.store, set()

    def record(request: Request, response: Response) -> Response:
        server.requests.append(
            (request.url.path, request.headers.get("range"), response.status_code)
        )
        return response

    def whole(sha256: str) -> bytes:
        return store.local_path(sha256).read_bytes()

    @app.get("/blobs/{sha256}")
    def blob(request: Request, sha256: str) -> Response:
        """The real thing."""
        response = blob_response(
            request,
            store,
            sha256=sha256,
            size=store.size(sha256),
            filename="adapter_model.safetensors",
        )
        return record(request, response)

    @app.get("/cut/{sha256}")
    def cut(request: Request, sha256: str) -> Response:
        """The first answer dies halfway through the body; later ones are whole."""
        if sha256 in cut_once:
            return blob(request, sha256)
        cut_once.add(sha256)
        body = whole(sha256)

        def half_then_die() -> Iterator[bytes]:
            for i in range(0, len(body) // 2, 64 * 1024):
                yield body[i : i + 64 * 1024]
            time.sleep(0.1)  # let the bytes reach the client before the connection drops
            raise ConnectionAbortedError("server dies mid-body")

        headers = {"content-length": str(len(body)), "etag": f'"{sha256}"'}
        return record(request, StreamingResponse(half_then_die(), headers=headers))

    @app.get("/norange/{sha256}")
    def norange(request: Request, sha256: str) -> Response:
        """A server that knows nothing of ranges."""
        return record(request, Response(whole(sha256), media_type="application/octet-stream"))

    @app.get("/corrupt/{sha256}")
    def corrupt(request: Request, sha256: str) -> Response:
        """Right length, right ETag, one byte flipped."""
        body = bytearray(whole(sha256))
        body[len(body) // 3] ^= 0x01
        return record(request, Response(bytes(body), headers={"etag": f'"{sha256}"'}))

    return app


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    store = LocalArtifactStore(tmp_path_factory.mktemp("server"))
    data = os.urandom(SIZE)
    srv = Server(url="", store=store, data=data, sha256=store.put_bytes(data).sha256)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    srv.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    uv = uvicorn.Server(uvicorn.Config(make_app(srv), lifespan="off", log_level="critical"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield srv
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    server.requests.clear()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_cut_by_the_client_resumes_with_a_range(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    url = f"/blobs/{server.sha256}"
    dest = tmp_path / "adapter_model.safetensors"
    part = tmp_path / "adapter_model.safetensors.part"
    with client.stream("GET", url) as r, open(part, "wb") as f:
        for chunk in r.iter_raw():
            f.write(chunk)
            if f.tell() >= SIZE // 2:
                break  # the client gives up halfway and drops the connection
    half = part.stat().st_size
    assert SIZE // 2 <= half < SIZE

    seen: list[tuple[int, int]] = []
    result = download_file(
        client,
        url,
        dest,
        sha256=server.sha256,
        size=SIZE,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert result == dest and not part.exists()
    assert dest.read_bytes() == server.data and sha(dest.read_bytes()) == server.sha256
    assert server.requests_to("/blobs/")[-1] == (f"bytes={half}-", 206)
    assert seen[0] == (half, SIZE) and seen[-1] == (SIZE, SIZE)


def test_download_cut_by_the_server_resumes_on_the_next_call(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    blob = server.store.put_bytes(os.urandom(3 * MiB))
    url, dest = f"/cut/{blob.sha256}", tmp_path / "model.bin"
    part = tmp_path / "model.bin.part"
    with pytest.raises(httpx.TransportError):
        download_file(client, url, dest, sha256=blob.sha256, size=blob.size)
    assert not dest.exists()
    kept = part.stat().st_size
    assert 0 < kept < blob.size

    download_file(client, url, dest, sha256=blob.sha256, size=blob.size)
    assert sha(dest.read_bytes()) == blob.sha256 and not part.exists()
    assert server.requests_to("/cut/") == [(None, 200), (f"bytes={kept}-", 206)]


def test_server_that_ignores_ranges_gets_a_fresh_download(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    dest = tmp_path / "a.safetensors"
    (tmp_path / "a.safetensors.part").write_bytes(server.data[: SIZE // 2])
    download_file(client, f"/norange/{server.sha256}", dest, sha256=server.sha256, size=SIZE)
    assert dest.read_bytes() == server.data
    assert server.requests_to("/norange/") == [(f"bytes={SIZE // 2}-", 200)]


def test_stale_partial_file_is_discarded_and_downloaded_again(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    dest = tmp_path / "a.safetensors"
    (tmp_path / "a.safetensors.part").write_bytes(os.urandom(1000))  # not a prefix of the blob
    download_file(client, f"/blobs/{server.sha256}", dest, sha256=server.sha256, size=SIZE)
    assert dest.read_bytes() == server.data
    assert server.requests_to("/blobs/") == [("bytes=1000-", 206), (None, 200)]


def test_complete_partial_file_needs_no_request(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    dest = tmp_path / "a.safetensors"
    (tmp_path / "a.safetensors.part").write_bytes(server.data)
    download_file(client, f"/blobs/{server.sha256}", dest, sha256=server.sha256, size=SIZE)
    assert dest.read_bytes() == server.data and server.requests == []


def test_corrupted_bytes_are_refused(server: Server, client: httpx.Client, tmp_path: Path) -> None:
    dest = tmp_path / "a.safetensors"
    with pytest.raises(ChecksumMismatch) as err:
        download_file(client, f"/corrupt/{server.sha256}", dest, sha256=server.sha256, size=SIZE)
    assert f"expected {server.sha256}" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a partial one


def test_wrong_size_is_refused(server: Server, client: httpx.Client, tmp_path: Path) -> None:
    dest = tmp_path / "a.safetensors"
    with pytest.raises(ChecksumMismatch):
        download_file(client, f"/blobs/{server.sha256}", dest, sha256=server.sha256, size=SIZE - 1)
    assert list(tmp_path.iterdir()) == []


def test_http_errors_propagate(server: Server, client: httpx.Client, tmp_path: Path) -> None:
    with pytest.raises(httpx.HTTPStatusError) as err:
        download_file(client, "/blobs/" + "e" * 64, tmp_path / "x", sha256="e" * 64)
    assert err.value.response.status_code == 404


def test_blob_cache_downloads_each_hash_once(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    cache = BlobCache(tmp_path / "cache")
    url = f"/blobs/{server.sha256}"
    first = cache.fetch(client, url, server.sha256, SIZE)
    assert first.read_bytes() == server.data
    assert len(server.requests) == 1
    second = cache.fetch(client, url, server.sha256, SIZE)
    assert second == first and len(server.requests) == 1  # nothing downloaded the second time

    with pytest.raises(ChecksumMismatch):
        cache.fetch(client, f"/corrupt/{server.sha256}", "f" * 64, SIZE)
    assert not cache.path("f" * 64).exists()
