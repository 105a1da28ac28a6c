"""The artifact store failing under the API, never a 500: object storage (the S3 store against
moto's server, then pointed at a dead endpoint or a missing bucket) answers 503
`artifact_store_unavailable`, which workers send again; a full local disk 507."""

from __future__ import annotations

import hashlib
import os

import boto3
import pytest
from botocore.config import Config
from fastapi.testclient import TestClient

from api.deps import AppState
from service.settings import Settings
from tests.factories import Holder, make_adapter
from tests.live import free_port
from tests.s3 import new_bucket, s3_endpoint  # noqa: F401  (fixture)
from tests.specs import tiny_spec


@pytest.fixture
def settings(settings: Settings, s3_endpoint: str) -> Settings:  # noqa: F811
    return settings.model_copy(update={
        "artifacts_url": f"s3://{new_bucket(s3_endpoint)}/artifacts"})


def _unreachable(state: AppState) -> None:
    """From now on the store's requests go to a port nothing listens on, with no retries."""
    state.store.client = boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1))


def _holder(client: TestClient) -> Holder:
    """A job submitted and claimed by hand, to upload blobs as its worker."""
    return Holder(client, client.post("/jobs", json=tiny_spec()).json())


def _assert_unavailable(response) -> None:
    assert response.status_code == 503, response.text
    problem = response.json()
    assert problem["code"] == "artifact_store_unavailable", problem
    assert "artifact store failed" in problem["detail"], problem
    assert response.headers["retry-after"] == "2"


def test_a_download_and_an_upload_with_the_store_away_answer_503(
        client: TestClient, state: AppState):
    adapter = make_adapter(state)
    name = adapter.files[0].name
    assert client.get(f"/adapters/{adapter.id}/files/{name}").status_code == 200

    _unreachable(state)
    response = client.get(f"/adapters/{adapter.id}/files/{name}")
    _assert_unavailable(response)
    # boto's error class, not its message: the store's endpoint and keys stay in the log
    assert "EndpointConnectionError" in response.json()["detail"]
    assert "127.0.0.1" not in response.json()["detail"]

    _assert_unavailable(_holder(client).offer(b"weights" * 1000))


def test_a_bucket_that_is_gone_answers_503_with_the_stores_error_code(
        client: TestClient, state: AppState):
    adapter = make_adapter(state)
    name = adapter.files[0].name
    state.store.bucket = "lp-no-such-bucket"  # deleted, or a typo in LORAPLANE_ARTIFACTS_URL
    response = client.get(f"/adapters/{adapter.id}/files/{name}")
    _assert_unavailable(response)
    assert "NoSuchBucket" in response.json()["detail"], response.json()


def test_a_full_disk_answers_507_and_stores_nothing(
        client: TestClient, state: AppState, monkeypatch: pytest.MonkeyPatch):
    """The local store's temp file opened on /dev/full: the kernel's own ENOSPC on write."""
    from service.artifacts import LocalArtifactStore

    local = LocalArtifactStore(state.settings.data_dir / "artifacts-full")
    monkeypatch.setattr(state, "store", local)
    real_open = os.open

    def open_on_a_full_disk(path, flags, *args):
        if str(path).endswith(".part"):  # the store's temp files
            return real_open("/dev/full", os.O_WRONLY)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", open_on_a_full_disk)
    data = b"weights" * 1000
    response = _holder(client).offer(data)
    assert response.status_code == 507, response.text
    assert response.json()["code"] == "insufficient_storage"
    assert not local.exists(hashlib.sha256(data).hexdigest())
