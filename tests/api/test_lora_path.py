"""`lora_path` over HTTP: every form resolves at submit, every bad one is a 422 that says what
is wrong, and the claim gives the worker what submit resolved (parsing: tests/service/)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.deps import AppState
from db import models
from service.registry.checkpoints import prune_checkpoints
from service.schemas import JobState
from service.settings import Settings
from tests.factories import BASE, add_checkpoint, make_adapter, make_job

CK = "ck_01jd8x4k2m9q7r5t3v1w0y6z8a"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """The suite's settings with one allowed root for worker-local adapter folders."""
    roots = tmp_path / "roots" / "adapters"
    roots.mkdir(parents=True)
    return Settings(
        data_dir=tmp_path / "data", database_url=db_url, lease_seconds=30, lora_path_roots=[roots]
    )


def submit(client: TestClient, lora_path: str, *, rank: int | None = None, model_path: str = BASE):
    model = {"model_path": model_path, "is_lora": True, "lora_path": lora_path}
    if rank is not None:
        model["lora_rank"] = rank
    return client.post("/jobs", json={"actor": {"model": model}})


# ---------------------------------------------------------------------------- submit: forms


def test_each_registry_form_resolves_to_its_adapter(client: TestClient, state: AppState):
    v1 = make_adapter(state, seed=1)
    v2 = make_adapter(state, seed=2)
    client.put("/aliases/bot/prod", json={"adapter_id": v1.id})
    url = client.get(f"/adapters/{v1.id}").json()["lora_path"]
    forms = {
        v1.id: v1.id,
        "bot:1": v1.id,
        "bot:2": v2.id,
        "bot@prod": v1.id,
        "bot@latest": v2.id,
        url: v1.id,
        # Only the path counts: the host is never contacted.
        f"http://169.254.169.254/latest/adapters/{v2.id}": v2.id,
    }
    for lora_path, adapter_id in forms.items():
        response = submit(client, lora_path, rank=8)
        assert response.status_code == 201, (lora_path, response.text)
        assert response.json()["parent_adapter_id"] == adapter_id, lora_path
    # Without lora_rank the adapter's rank is used.
    assert submit(client, "bot:1").status_code == 201


def test_checkpoint_forms_resolve(client: TestClient, state: AppState):
    parent = make_adapter(state)
    with state.sessions() as session:
        job = make_job(session, state=JobState.failed, parent=parent.id)
        add_checkpoint(session, state.store, job, 7)
        session.commit()
    (checkpoint,) = client.get(f"/jobs/{job.id}/checkpoints").json()["items"]
    for lora_path in (checkpoint["lora_path"], checkpoint["id"]):
        response = submit(client, lora_path, rank=8)
        assert response.status_code == 201, response.text
        # Continuing a checkpoint continues the line of the adapter its job started from.
        assert response.json()["parent_adapter_id"] == parent.id


def test_local_folder_under_the_roots(client: TestClient, settings: Settings):
    root = settings.lora_path_roots[0]
    response = submit(client, str(root / "bot" / "v1"), rank=8)
    assert response.status_code == 201, response.text
    assert response.json()["parent_adapter_id"] is None


# ---------------------------------------------------------------------------- submit: rejections


def assert_422(response, *needles: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_lora_path"
    for needle in needles:
        assert needle in body["detail"], (needle, body["detail"])


def test_rejections_say_what_is_wrong(client: TestClient, state: AppState, settings: Settings):
    lora = make_adapter(state, rank=8)
    other_base = make_adapter(state, name="elsewhere", model_path="/models/other-base")
    full = make_adapter(state, name="full-bot", kind="full")

    assert_422(
        submit(client, "ad_00000000000000000000000000", rank=8),
        "no adapter ad_00000000000000000000000000",
    )
    for unknown_name in ("nobody:1", "nobody@prod", "nobody@latest"):
        assert_422(submit(client, unknown_name, rank=8), "no adapter named 'nobody'")
    assert_422(submit(client, "bot:9", rank=8), "has no version 9", "newest is 1")
    assert_422(submit(client, "bot@prod", rank=8), "has no alias 'prod'")
    assert_422(
        submit(client, other_base.id, rank=8),
        "base model '/models/other-base'",
        f"model_path is '{BASE}'",
    )
    assert_422(submit(client, full.id, rank=8), "kind: full")
    assert_422(submit(client, lora.id, rank=16), "lora_rank 16", "r=8")
    assert_422(submit(client, "relative/folder", rank=8), "not a form")

    outside = settings.lora_path_roots[0].parent / "elsewhere"
    assert_422(submit(client, str(outside), rank=8), "outside the allowed roots")
    escape = f"{settings.lora_path_roots[0]}/../../etc"
    assert_422(submit(client, escape, rank=8), "may not contain `..`")
    link = settings.lora_path_roots[0] / "sneaky"
    os.symlink("/etc", link)
    assert_422(submit(client, str(link / "x"), rank=8), "resolves to '/etc/x'", "outside")


def test_local_paths_refused_when_no_roots(client: TestClient, state: AppState):
    state.settings.lora_path_roots = []
    assert_422(
        submit(client, "/path/to/pretrained/lora/weights", rank=8),
        "the operator allows no worker-local folders",
    )


def test_checkpoint_rejections(client: TestClient, state: AppState):
    with state.sessions() as session:
        full_job = make_job(session, is_lora=False, state=JobState.failed)
        full_ck = add_checkpoint(session, state.store, full_job, 1, lora=False)
        lora_job = make_job(session, rank=8, state=JobState.succeeded)
        old = add_checkpoint(session, state.store, lora_job, 1)
        add_checkpoint(session, state.store, lora_job, 2)
        prune_checkpoints(session, lora_job.id, keep=1)
        session.commit()
    assert_422(submit(client, full_ck.id, rank=8), "holds no LoRA adapter")
    assert_422(submit(client, old.id, rank=8), "was pruned")
    assert_422(
        submit(client, f"https://x/jobs/{full_job.id}/checkpoints/{old.id}", rank=8),
        f"no checkpoint {old.id} of job {full_job.id}",
    )
    assert_422(submit(client, CK, rank=8), f"no checkpoint {CK}")


def test_a_checkpoint_a_queued_job_continues_from_is_not_pruned(
    client: TestClient, state: AppState
):
    with state.sessions() as session:
        job = make_job(session, state=JobState.running)
        first = add_checkpoint(session, state.store, job, 1)
        add_checkpoint(session, state.store, job, 2)
        session.commit()
    assert submit(client, first.id, rank=8).status_code == 201
    with state.sessions() as session:
        assert prune_checkpoints(session, job.id, keep=1) == []
        session.commit()
    steps = [c["step"] for c in client.get(f"/jobs/{job.id}/checkpoints").json()["items"]]
    assert steps == [1, 2]


# ---------------------------------------------------------------------------- claim time


def claim(client: TestClient) -> dict:
    """Claim the next job over the worker protocol (the admin token may)."""
    response = client.post("/worker/claim", json={"worker_id": "w1"})
    assert response.status_code == 200, response.text
    return response.json()


def download(client: TestClient, claimed: dict, sha256: str):
    return client.get(f"/worker/jobs/{claimed['job']['id']}/inputs/{sha256}",
                      headers={"X-Loraplane-Lease": claimed["lease_id"]})


def test_the_claim_continues_from_what_submit_resolved(client: TestClient, state: AppState):
    v1 = make_adapter(state, seed=1)
    v2 = make_adapter(state, seed=2)
    client.put("/aliases/bot/prod", json={"adapter_id": v1.id})
    assert submit(client, "bot@prod", rank=8).status_code == 201
    client.put("/aliases/bot/prod", json={"adapter_id": v2.id})  # moved after submit

    claimed = claim(client)
    source = claimed["lora_source"]
    assert (source["kind"], source["lora_path"], source["adapter_id"], source["rank"]) == (
        "adapter", "bot@prod", v1.id, 8)
    assert source["files"] == [
        {"name": f.name, "sha256": f.sha256, "size": f.size,
         "url": f"/worker/jobs/{claimed['job']['id']}/inputs/{f.sha256}"}
        for f in v1.files
    ]
    for f in v1.files:
        got = download(client, claimed, f.sha256)
        assert got.status_code == 200 and got.headers["etag"] == f'"{f.sha256}"'
    # The weights of the adapter the alias points to now are not an input of this job.
    weights = next(f for f in v2.files if f.name.endswith(".safetensors"))
    refused = download(client, claimed, weights.sha256)
    assert refused.status_code == 404, refused.text
    assert refused.json()["code"] == "not_found"


def test_the_claim_gives_a_checkpoint_source_by_its_column(client: TestClient, state: AppState):
    with state.sessions() as session:
        ck_job = make_job(session, state=JobState.failed)
        ck = add_checkpoint(session, state.store, ck_job, 3)
        session.commit()
    job = submit(client, f"https://lp.example/jobs/{ck_job.id}/checkpoints/{ck.id}", rank=8)
    assert job.status_code == 201, job.text
    with state.sessions() as session:
        row = session.get(models.Job, job.json()["id"])
        assert (row.lora_source_kind, row.source_checkpoint_id) == ("checkpoint", ck.id)

    claimed = claim(client)
    source = claimed["lora_source"]
    assert (source["kind"], source["checkpoint_id"], source["job_id"], source["rank"]) == (
        "checkpoint", ck.id, ck_job.id, 8)
    assert [f["name"] for f in source["files"]] == [
        "adapter_config.json", "adapter_model.safetensors"]
    config = next(f for f in source["files"] if f["name"] == "adapter_config.json")
    got = client.get(config["url"], headers={"X-Loraplane-Lease": claimed["lease_id"]})
    assert got.status_code == 200 and json.loads(got.content)["r"] == 8


def test_a_local_folder_is_checked_once_at_submit(
    client: TestClient, state: AppState, settings: Settings
):
    root = settings.lora_path_roots[0]
    (root / "real").mkdir()
    (root / "link").symlink_to(root / "real")
    assert submit(client, str(root / "link"), rank=8).status_code == 201
    state.settings.lora_path_roots = []  # the claim does not check the roots again

    source = claim(client)["lora_source"]
    assert (source["kind"], source["path"], source["files"]) == (
        "local", os.path.realpath(root / "real"), [])


def test_a_source_gone_since_submit_fails_the_job_at_claim(client: TestClient, state: AppState):
    adapter = make_adapter(state)
    job = submit(client, adapter.id, rank=8).json()
    with state.sessions() as session:  # as migration 0002 leaves a job whose spec was stale
        session.get(models.Job, job["id"]).parent_adapter_id = None
        session.commit()

    assert client.post("/worker/claim", json={"worker_id": "w1"}).status_code == 204
    failed = client.get(f"/jobs/{job['id']}").json()
    assert failed["state"] == "failed"
    assert failed["error"]["code"] == "invalid_lora_path"
    assert failed["error"]["message"] == (
        f"lora_path {adapter.id!r}: the adapter it named at submit is gone")
