"""Serving blobs over HTTP: ETag and 304, ranges (206/416), If-Range, HEAD, tar streams."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from api.downloads import blob_response, content_disposition, safe_archive_name, tar_stream
from api.errors import install as install_error_handlers
from service.artifacts import LocalArtifactStore
from service.errors import InvalidRequest, NotFound, ServiceError

MiB = 1024 * 1024
SIZE = 3 * MiB + 123
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def data() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture
def digest(store: LocalArtifactStore, data: bytes) -> str:
    return store.put_bytes(data).sha256


def make_app(store: LocalArtifactStore) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.api_route("/blobs/{sha256}", methods=["GET", "HEAD"])
    def get_blob(
        request: Request, sha256: str, name: str = "adapter_model.safetensors"
    ) -> Response:
        return blob_response(request, store, sha256=sha256, size=store.size(sha256), filename=name)

    @app.get("/archive")
    def get_archive(request: Request) -> StreamingResponse:
        entries = [
            (e.split(":")[0], e.split(":")[1], store.size(e.split(":")[1]))
            for e in request.query_params.getlist("e")
        ]
        return StreamingResponse(tar_stream(entries, store), media_type="application/x-tar")

    return app


@pytest.fixture
async def client(store: LocalArtifactStore) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_full_download_headers_and_bytes(
    client: httpx.AsyncClient, digest: str, data: bytes
) -> None:
    r = await client.get(f"/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["etag"] == f'"{digest}"'
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-length"] == str(SIZE)
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == 'attachment; filename="adapter_model.safetensors"'


async def test_head_gives_headers_without_body(client: httpx.AsyncClient, digest: str) -> None:
    r = await client.head(f"/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == str(SIZE)
    assert r.headers["etag"] == f'"{digest}"'
    r = await client.head(f"/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.headers["content-length"] == "10" and r.content == b""


@pytest.mark.parametrize(
    "if_none_match",
    [
        '"{d}"',
        'W/"{d}"',
        '"0000", "{d}"',
        '"aaaa" , W/"{d}"',
        "*",
    ],
)
async def test_if_none_match_gives_304(
    client: httpx.AsyncClient, digest: str, if_none_match: str
) -> None:
    r = await client.get(
        f"/blobs/{digest}", headers={"If-None-Match": if_none_match.format(d=digest)}
    )
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == f'"{digest}"'


async def test_other_etag_gives_the_file(
    client: httpx.AsyncClient, digest: str, data: bytes
) -> None:
    r = await client.get(f"/blobs/{digest}", headers={"If-None-Match": '"abc", W/"def"'})
    assert r.status_code == 200 and r.content == data


@pytest.mark.parametrize(
    "header, first, last",
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-1000", 1000, 1000),
        ("bytes=1048570-2097160", 1048570, 2097160),  # crosses chunk boundaries
        (f"bytes={SIZE - 10}-{SIZE + 500}", SIZE - 10, SIZE - 1),  # last clamped to the end
        ("bytes=2000000-", 2000000, SIZE - 1),
        ("bytes=-500", SIZE - 500, SIZE - 1),
        (f"bytes=-{SIZE * 2}", 0, SIZE - 1),  # suffix longer than the file: all of it
        ("BYTES = 5-9", 5, 9),
    ],
)
async def test_single_range_gives_206(
    client: httpx.AsyncClient, digest: str, data: bytes, header: str, first: int, last: int
) -> None:
    r = await client.get(f"/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    assert r.headers["content-length"] == str(last - first + 1)
    assert r.content == data[first : last + 1]
    assert r.headers["etag"] == f'"{digest}"'


@pytest.mark.parametrize(
    "header",
    [f"bytes={SIZE}-", f"bytes={SIZE + 10}-{SIZE + 20}", "bytes=-0", f"bytes={SIZE + 5}-3"],
)
async def test_unsatisfiable_range_gives_416_problem(
    client: httpx.AsyncClient, digest: str, header: str
) -> None:
    r = await client.get(f"/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{SIZE}"
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 416 and body["type"] and body["title"] and body["detail"]
    assert body["code"] == "range_not_satisfiable"


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-9,20-29",  # several ranges: whole file (allowed by RFC 9110)
        "bytes=abc",
        "bytes=9-3",  # last before first, inside the file: invalid, ignored
        "items=0-9",
        "bytes=-",
    ],
)
async def test_ignored_range_gives_the_whole_file(
    client: httpx.AsyncClient, digest: str, data: bytes, header: str
) -> None:
    r = await client.get(f"/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 200 and r.content == data
    assert "content-range" not in r.headers


async def test_if_range(client: httpx.AsyncClient, digest: str, data: bytes) -> None:
    url = f"/blobs/{digest}"
    r = await client.get(url, headers={"Range": "bytes=100-", "If-Range": f'"{digest}"'})
    assert r.status_code == 206 and r.content == data[100:]
    for stale in ['"' + "0" * 64 + '"', f'W/"{digest}"', "Wed, 21 Oct 2015 07:28:00 GMT"]:
        r = await client.get(url, headers={"Range": "bytes=100-", "If-Range": stale})
        assert r.status_code == 200 and r.content == data, stale


async def test_empty_blob(client: httpx.AsyncClient, store: LocalArtifactStore) -> None:
    empty = store.put_bytes(b"").sha256
    r = await client.get(f"/blobs/{empty}")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "0"
    r = await client.get(f"/blobs/{empty}", headers={"Range": "bytes=0-"})
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */0"


async def test_missing_and_malformed_blob(client: httpx.AsyncClient) -> None:
    r = await client.get("/blobs/" + "a" * 64)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = await client.get("/blobs/" + "A" * 64)
    assert r.status_code == 422 and r.json()["code"] == "invalid_sha256"
    # Encoded slashes split the segment: no route matches, nothing reaches the store.
    r = await client.get("/blobs/..%2F..%2Fetc%2Fpasswd")
    assert r.status_code == 404
    assert (r.json()["code"], r.json()["detail"]) == ("not_found", "Not Found")
    # In one segment, a path-like value reaches the handler and is no sha256.
    r = await client.get("/blobs/..%5C..%5Cetc%5Cpasswd")
    assert r.status_code == 422 and r.json()["code"] == "invalid_sha256"


async def test_content_disposition_is_sanitised(client: httpx.AsyncClient, digest: str) -> None:
    r = await client.get(f"/blobs/{digest}", params={"name": '../../etc/pa"ss\\wd\r\nX-Evil: 1'})
    assert r.headers["content-disposition"] == 'attachment; filename="wdX-Evil: 1"'
    assert "x-evil" not in r.headers
    assert content_disposition("adaptér ✓.json") == (
        "attachment; filename=\"adapt_r _.json\"; filename*=UTF-8''adapt%C3%A9r%20%E2%9C%93.json"
    )
    assert content_disposition('a"b.json') == (
        "attachment; filename=\"a_b.json\"; filename*=UTF-8''a%22b.json"
    )
    assert content_disposition("..") == 'attachment; filename="download"'


async def test_tar_archive_unpacks_to_the_same_bytes(
    client: httpx.AsyncClient, store: LocalArtifactStore, digest: str, data: bytes, tmp_path: Path
) -> None:
    config = b'{"r": 8, "lora_alpha": 8}'
    config_sha = store.put_bytes(config).sha256
    empty_sha = store.put_bytes(b"").sha256
    long_name = "nested/" + "x" * 150 + ".bin"  # needs a pax header
    r = await client.get(
        "/archive",
        params={
            "e": [
                f"adapter_config.json:{config_sha}",
                f"/abs/adapter_model.safetensors:{digest}",
                f"../../escape.txt:{empty_sha}",
                f"{long_name}:{config_sha}",
            ]
        },
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-tar"
    assert len(r.content) % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:") as tar:
        assert tar.getnames() == [
            "adapter_config.json",
            "abs/adapter_model.safetensors",
            "escape.txt",
            long_name,
        ]
        tar.extractall(tmp_path / "out", filter="data")
    out = tmp_path / "out"
    assert (out / "adapter_config.json").read_bytes() == config
    assert (out / "abs/adapter_model.safetensors").read_bytes() == data
    assert (out / "escape.txt").read_bytes() == b""
    assert hashlib.sha256((out / long_name).read_bytes()).hexdigest() == config_sha


def test_tar_stream_does_not_buffer_files(store: LocalArtifactStore) -> None:
    big = store.put_bytes(os.urandom(32 * MiB))
    tracemalloc.start()
    try:
        total = sum(len(chunk) for chunk in tar_stream([("big.bin", big.sha256, big.size)], store))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 32 * MiB
    assert peak < 4 * MiB, f"peak {peak / MiB:.1f} MiB while streaming 32 MiB"


def test_tar_stream_checks_entries_before_streaming(store: LocalArtifactStore) -> None:
    blob = store.put_bytes(b"x")
    with pytest.raises(InvalidRequest):
        tar_stream([("a", blob.sha256, 1), ("./a", blob.sha256, 1)], store)
    with pytest.raises(InvalidRequest):
        tar_stream([("../..", blob.sha256, 1)], store)
    with pytest.raises(NotFound):
        tar_stream([("a", "b" * 64, 1)], store)
    with pytest.raises(ServiceError, match="holds 1 bytes, not 2"):
        tar_stream([("a", blob.sha256, 2)], store)


@pytest.mark.parametrize(
    "name, safe",
    [
        ("adapter_config.json", "adapter_config.json"),
        ("/etc/passwd", "etc/passwd"),
        ("a/../../b", "a/b"),
        ("C:\\Windows\\x.dll", "Windows/x.dll"),
        ("./a//b/./c", "a/b/c"),
        ("bad\x00name\n", "badname"),
    ],
)
def test_safe_archive_name(name: str, safe: str) -> None:
    assert safe_archive_name(name) == safe
