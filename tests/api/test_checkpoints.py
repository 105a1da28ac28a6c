"""A job's checkpoints over HTTP: recorded, listed, paged, downloaded, pruned."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient

from api.deps import AppState
from service.registry.blobs import collect_garbage
from service.registry.checkpoints import latest_checkpoint, prune_checkpoints
from service.schemas import JobState
from tests.factories import add_checkpoint, make_adapter, make_job
from tests.s3 import artifacts_url, s3_endpoint  # noqa: F401  (fixtures: both stores)


def test_checkpoints_record_list_download_and_prune(client: TestClient, state: AppState):
    with state.sessions() as session:
        job = make_job(session, state=JobState.running)
        saved = [add_checkpoint(session, state.store, job, step) for step in (10, 20, 30, 40)]
        again = add_checkpoint(session, state.store, job, 20)
        assert again.id == saved[1].id
        assert latest_checkpoint(session, job.id).step == 40
        session.commit()

    page = client.get(f"/jobs/{job.id}/checkpoints").json()
    assert [c["step"] for c in page["items"]] == [10, 20, 30, 40]
    first = page["items"][0]
    assert first["id"].startswith("ck_") and first["size"] == sum(f["size"] for f in first["files"])
    assert first["lora_path"] == f"http://testserver/jobs/{job.id}/checkpoints/{first['id']}"
    assert (
        client.get(first["lora_path"].removeprefix("http://testserver")).json()["id"] == first["id"]
    )
    paged = client.get(f"/jobs/{job.id}/checkpoints", params={"limit": 3}).json()
    assert len(paged["items"]) == 3
    rest = client.get(f"/jobs/{job.id}/checkpoints", params={"cursor": paged["next_cursor"]}).json()
    assert [c["step"] for c in rest["items"]] == [40]

    weights = next(f for f in first["files"] if f["name"] == "adapter/adapter_model.safetensors")
    url = f"/jobs/{job.id}/checkpoints/{first['id']}/files/adapter/adapter_model.safetensors"
    got = client.get(url)
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == weights["sha256"]
    assert client.get(url, headers={"Range": "bytes=0-9"}).status_code == 206

    # Step 20's adapter bytes are registered too: pruning never takes the registry's blobs.
    registered = make_adapter(state, seed=20)
    with state.sessions() as session:
        garbage = prune_checkpoints(session, job.id, keep=2)
        session.commit()
        deleted = collect_garbage(session, state.store, garbage)
    assert [c["step"] for c in client.get(f"/jobs/{job.id}/checkpoints").json()["items"]] == [
        30,
        40,
    ]
    assert weights["sha256"] in deleted and not state.store.exists(weights["sha256"])
    assert all(state.store.exists(f.sha256) for f in registered.files)
    assert client.get(url).status_code == 404
    assert client.get("/jobs/job_00000000000000000000000000/checkpoints").status_code == 404


def test_full_fine_tuning_checkpoints_have_no_lora_path(client: TestClient, state: AppState):
    with state.sessions() as session:
        job = make_job(session, is_lora=False, state=JobState.failed)
        add_checkpoint(session, state.store, job, 5, lora=False)
        session.commit()
    (item,) = client.get(f"/jobs/{job.id}/checkpoints").json()["items"]
    assert (item["kind"], item["lora_path"]) == ("full", None)
