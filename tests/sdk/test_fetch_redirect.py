"""The SDK's verified, resumable download when the server keeps its blobs in object storage
and answers with a redirect to a presigned URL (a real uvicorn server, moto's S3 server)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from loraplane_client.fetch import ChecksumMismatch, download_file

from api.downloads import blob_response
from service.artifacts_s3 import S3ArtifactStore
from tests.s3 import new_bucket, s3_endpoint  # noqa: F401  (fixture)

SIZE = 3 * 1024 * 1024 + 17


@pytest.fixture(scope="module")
def served(s3_endpoint: str) -> Iterator[tuple[str, S3ArtifactStore, bytes, str]]:  # noqa: F811
    """(API URL, its store, the blob's bytes, their sha256): downloads redirect to S3."""
    store = S3ArtifactStore(f"s3://{new_bucket(s3_endpoint)}/a", presign_seconds=60)
    data = os.urandom(SIZE)
    sha256 = store.put_bytes(data).sha256
    app = FastAPI()

    @app.get("/blobs/{digest}")
    def blob(request: Request, digest: str) -> Response:
        return blob_response(request, store, sha256=digest, size=store.size(digest),
                             filename="adapter_model.safetensors")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", store, data, sha256
    server.should_exit = True
    thread.join(5)


def client(url: str, seen: list[httpx.Request]) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": "Bearer lp_tok_secret"},
                        event_hooks={"request": [seen.append]})


def test_a_download_follows_the_redirect_without_the_token(served, tmp_path: Path) -> None:
    url, _, data, sha256 = served
    seen: list[httpx.Request] = []
    with client(url, seen) as http:
        dest = download_file(http, f"/blobs/{sha256}", tmp_path / "a", sha256=sha256, size=SIZE)
    assert dest.read_bytes() == data
    api, store = seen
    assert api.url.path == f"/blobs/{sha256}" and api.headers["authorization"]
    assert store.url.host == "127.0.0.1" and "X-Amz-Signature" in str(store.url)
    assert "authorization" not in store.headers  # the presigned URL carries its own


def test_a_cut_download_resumes_from_the_store_by_range(served, tmp_path: Path) -> None:
    url, _, data, sha256 = served
    dest = tmp_path / "a"
    Path(f"{dest}.part").write_bytes(data[: SIZE // 2])  # what a cut left behind
    seen: list[httpx.Request] = []
    with client(url, seen) as http:
        download_file(http, f"/blobs/{sha256}", dest, sha256=sha256, size=SIZE)
    assert dest.read_bytes() == data
    assert [r.headers.get("range") for r in seen] == [f"bytes={SIZE // 2}-"] * 2
    assert "if-range" not in seen[1].headers  # the store's ETag is not our sha256


def test_bytes_from_the_store_are_still_verified(served, tmp_path: Path) -> None:
    url, store, _, _ = served
    asked, other = os.urandom(1000), os.urandom(1000)
    sha256, wrong = store.put_bytes(asked).sha256, store.put_bytes(other).sha256
    # The store now holds other bytes under the name of the blob the API is asked for.
    store.client.copy_object(Bucket=store.bucket, Key=store._key(sha256),
                             CopySource={"Bucket": store.bucket, "Key": store._key(wrong)})
    with httpx.Client(base_url=url) as http, pytest.raises(ChecksumMismatch):
        download_file(http, f"/blobs/{sha256}", tmp_path / "a", sha256=sha256, size=1000)
    assert list(tmp_path.iterdir()) == []


def test_conditional_and_head_requests_are_answered_by_the_api(served) -> None:
    url, _, _, sha256 = served
    with httpx.Client(base_url=url) as http:
        assert http.get(f"/blobs/{sha256}", headers={"If-None-Match": f'"{sha256}"'}
                        ).status_code == 304
        redirect = http.get(f"/blobs/{sha256}")
        assert redirect.status_code == 307 and redirect.headers["etag"] == f'"{sha256}"'
