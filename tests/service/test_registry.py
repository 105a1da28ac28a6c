"""The adapter registry: registration, reads, lineage, aliases, deletion, downloads, checkpoints."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tarfile
import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.deps import AppState
from db import models
from service import jobs as job_service
from service.artifacts import ArtifactStore
from service.errors import Conflict, InvalidArtifact
from service.lora_path import ResolvedLora
from service.registry.adapters import delete_adapter
from service.registry.blobs import collect_garbage, sweep_blobs
from service.registry.checkpoints import latest_checkpoint, prune_checkpoints, record_checkpoint
from service.registry.register import register_adapter
from service.schemas import Adapter, AdapterResult, FileRef, JobState
from service.spec import parse_spec

BASE = "demo-tiny-llama"


# ---------------------------------------------------------------------------- helpers


def safetensors_bytes(floats: int, seed: int) -> bytes:
    """A valid safetensors file with one F32 tensor of `floats` pseudo-random values."""
    data = hashlib.shake_256(f"weights-{seed}".encode()).digest(4 * floats)
    header = json.dumps({"w": {"dtype": "F32", "shape": [floats], "data_offsets": [0, len(data)]}})
    raw = header.encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def put(store: ArtifactStore, name: str, data: bytes) -> FileRef:
    blob = store.put_bytes(data)
    return FileRef(name=name, sha256=blob.sha256, size=blob.size)


def lora_files(
    store: ArtifactStore,
    *,
    rank: int = 8,
    seed: int = 0,
    floats: int = 4096,
    config: dict[str, Any] | None = None,
) -> list[FileRef]:
    cfg = config or {
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": rank,
        "target_modules": ["q_proj", "v_proj"],
    }
    return [
        put(store, "adapter_config.json", json.dumps(cfg, sort_keys=True).encode()),
        put(store, "adapter_model.safetensors", safetensors_bytes(floats, seed)),
    ]


def make_job(
    session: Session,
    *,
    name: str | None = "bot",
    model_path: str = BASE,
    is_lora: bool = True,
    rank: int | None = 8,
    parent: str | None = None,
    state: JobState = JobState.succeeded,
) -> models.Job:
    """A job row as the queue leaves it (default: succeeded, not yet registered); with a
    `parent`, one that continued from that adapter."""
    model: dict[str, Any] = {"model_path": model_path, "is_lora": is_lora}
    if is_lora and rank is not None:
        model["lora_rank"] = rank
    if parent is not None:
        model["lora_path"] = parent
    document: dict[str, Any] = {"actor": {"model": model}}
    if name:
        document["runner"] = {"experiment_name": name}
    lora = ResolvedLora(kind="adapter", parent_adapter_id=parent) if parent else None
    job = job_service.submit_job(session, parse_spec(document), max_attempts=3, lora=lora)
    row = session.get(models.Job, job.id)
    assert row is not None
    row.state = state.value
    session.flush()
    return row


def make_adapter(
    state: AppState,
    *,
    name: str | None = "bot",
    model_path: str = BASE,
    rank: int = 8,
    seed: int = 0,
    parent: str | None = None,
    kind: str = "lora",
) -> Adapter:
    """A registered adapter, made as the worker's finish call would make it."""
    with state.sessions() as session:
        job = make_job(
            session,
            name=name,
            model_path=model_path,
            is_lora=kind == "lora",
            rank=rank,
            parent=parent,
        )
        if kind == "lora":
            files = lora_files(state.store, rank=rank, seed=seed)
        else:
            files = [
                put(state.store, "config.json", b'{"model_type": "llama"}'),
                put(state.store, "model.safetensors", safetensors_bytes(256, seed)),
            ]
        result = AdapterResult(
            kind=kind,
            files=files,
            rank=rank if kind == "lora" else None,
            target_modules=["q_proj", "v_proj"],
            base_fingerprint="f" * 64,
            metrics={"loss": 0.5},
        )
        adapter = register_adapter(session, job, result, store=state.store)
        session.commit()
        return adapter


@pytest.fixture
def state(client: TestClient) -> AppState:
    return client.app.state.loraplane


# ---------------------------------------------------------------------------- registration


def test_versions_are_monotonic_per_name(state: AppState):
    versions = [make_adapter(state, name="bot", seed=i).version for i in range(3)]
    other = make_adapter(state, name="other-bot")
    assert versions == [1, 2, 3]
    assert other.version == 1
    with state.sessions() as session:
        job = make_job(session, name=None)
        unnamed = register_adapter(
            session,
            job,
            AdapterResult(kind="lora", files=lora_files(state.store), rank=8),
            store=state.store,
        )
        assert (unnamed.name, unnamed.version) == (job.id, 1)
        assert job.adapter_id == unnamed.id
        # A retried finish call gets the same adapter back, not a new version.
        again = register_adapter(
            session,
            job,
            AdapterResult(kind="lora", files=lora_files(state.store), rank=8),
            store=state.store,
        )
        assert again.id == unnamed.id


def test_concurrent_registrations_get_distinct_consecutive_versions(state: AppState):
    n = 8
    with state.sessions() as session:
        job_ids = [make_job(session, name="race").id for _ in range(n)]
        session.commit()
    files = lora_files(state.store)
    barrier = threading.Barrier(n)
    versions: list[int] = []
    errors: list[BaseException] = []

    def register(job_id: str) -> None:
        try:
            barrier.wait(timeout=10)  # before any statement: SQLite's BEGIN IMMEDIATE serialises
            with state.sessions() as session:
                job = session.get(models.Job, job_id)
                adapter = register_adapter(
                    session, job, AdapterResult(kind="lora", files=files, rank=8), store=state.store
                )
                session.commit()
                versions.append(adapter.version)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(j,)) for j in job_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sorted(versions) == list(range(1, n + 1))
    with state.sessions() as session:
        assert session.get(models.AdapterName, ("default", "race")).last_version == n


def test_missing_blob_registers_nothing(state: AppState):
    with state.sessions() as session:
        job = make_job(session)
        session.commit()
        files = lora_files(state.store)
        files[1] = FileRef(name=files[1].name, sha256="0" * 64, size=10)
        with pytest.raises(InvalidArtifact) as info:
            register_adapter(
                session, job, AdapterResult(kind="lora", files=files, rank=8), store=state.store
            )
        assert info.value.code == "blob_missing"
        assert "adapter_model.safetensors" in info.value.message
        session.rollback()
        assert session.scalar(select(func.count()).select_from(models.Adapter)) == 0
        assert session.scalar(select(func.count()).select_from(models.AdapterName)) == 0
        assert session.get(models.Job, job.id).adapter_id is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s, f: [*f, put(s, "training_args.bin", b"\x80\x04K.")], "pickle"),
        (
            lambda s, f: [
                f[0],
                FileRef(name="../adapter_model.safetensors", sha256=f[1].sha256, size=f[1].size),
            ],
            "`..`",
        ),
        (
            lambda s, f: [
                f[0],
                FileRef(name="/etc/adapter_model.safetensors", sha256=f[1].sha256, size=f[1].size),
            ],
            "absolute",
        ),
        (lambda s, f: [f[0]], "exactly adapter_config.json + adapter_model.safetensors"),
        (lambda s, f: [*f, put(s, "README.md", b"hi")], "exactly"),
        (
            lambda s, f: [f[0], put(s, "adapter_model.safetensors", b"\x80\x04\x95" + b"\0" * 64)],
            "not a safetensors file",
        ),
        (
            lambda s, f: [f[0], FileRef(name=f[1].name, sha256=f[1].sha256, size=f[1].size + 1)],
            "announced with",
        ),
        (lambda s, f: [put(s, "adapter_config.json", b'{"r": 4}'), f[1]], "disagrees with r=4"),
    ],
    ids=[
        "pickle-file",
        "dotdot",
        "absolute",
        "missing-weights",
        "extra-file",
        "fake-safetensors",
        "wrong-size",
        "config-rank",
    ],
)
def test_registration_refuses_bad_files(state: AppState, mutate: Callable, message: str):
    with state.sessions() as session:
        job = make_job(session)
        files = mutate(state.store, lora_files(state.store))
        with pytest.raises(InvalidArtifact) as info:
            register_adapter(
                session, job, AdapterResult(kind="lora", files=files, rank=8), store=state.store
            )
        assert message in info.value.message


def test_full_fine_tuning_registers_kind_full(state: AppState):
    full = make_adapter(state, kind="full")
    assert (full.kind, full.rank, full.alpha) == ("full", None, None)
    assert [f.name for f in full.files] == ["config.json", "model.safetensors"]
    with state.sessions() as session:
        job = make_job(session, is_lora=False)
        with pytest.raises(InvalidArtifact, match="cannot register a result of kind 'lora'"):
            register_adapter(
                session,
                job,
                AdapterResult(kind="lora", files=lora_files(state.store), rank=8),
                store=state.store,
            )


# ---------------------------------------------------------------------------- reads


def test_get_adapter_shows_everything(client: TestClient, state: AppState):
    adapter = make_adapter(state, rank=16)
    body = client.get(f"/adapters/{adapter.id}").json()
    assert body["id"].startswith("ad_")
    assert (body["name"], body["version"], body["kind"], body["base_model"]) == (
        "bot",
        1,
        "lora",
        BASE,
    )
    assert (body["rank"], body["alpha"], body["base_fingerprint"]) == (16, 16.0, "f" * 64)
    assert body["target_modules"] == ["q_proj", "v_proj"]
    assert {f["name"] for f in body["files"]} == {
        "adapter_config.json",
        "adapter_model.safetensors",
    }
    assert all(len(f["sha256"]) == 64 and f["size"] > 0 for f in body["files"])
    assert body["job_id"].startswith("job_") and body["metrics"] == {"loss": 0.5}
    assert body["lineage"] == [] and body["aliases"] == [] and body["parent_adapter_id"] is None
    assert body["lora_path"] == f"http://testserver/adapters/{adapter.id}"
    assert body["download_url"] == f"http://testserver/adapters/{adapter.id}/archive"
    job = client.get(f"/jobs/{body['job_id']}").json()
    assert job["adapter_id"] == adapter.id

    missing = client.get("/adapters/ad_00000000000000000000000000")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_public_url_setting_shapes_urls(client: TestClient, state: AppState):
    adapter = make_adapter(state)
    state.settings.public_url = "https://lp.example/api/"
    body = client.get(f"/adapters/{adapter.id}").json()
    assert body["lora_path"] == f"https://lp.example/api/adapters/{adapter.id}"
    assert body["download_url"] == f"https://lp.example/api/adapters/{adapter.id}/archive"


def test_list_filters_and_pages(client: TestClient, state: AppState):
    made = [make_adapter(state, name="a", seed=i) for i in range(3)]
    made += [make_adapter(state, name="b", model_path="/models/other", seed=9)]
    made += [make_adapter(state, name="c", kind="full")]
    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/adapters", params=params).json()
        pages.append([a["id"] for a in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for p in pages for i in p] == [a.id for a in reversed(made)]
    by_name = client.get("/adapters", params={"name": "a"}).json()["items"]
    assert [a["version"] for a in by_name] == [3, 2, 1]
    by_base = client.get("/adapters", params={"base_model": "/models/other"}).json()["items"]
    assert [a["name"] for a in by_base] == ["b"]
    full = client.get("/adapters", params={"kind": "full"}).json()["items"]
    assert [a["name"] for a in full] == ["c"]
    assert client.get("/adapters", params={"kind": "nope"}).status_code == 422
    assert client.get("/adapters", params={"cursor": "garbage!"}).status_code == 422


def test_lineage_chain_of_three(client: TestClient, state: AppState):
    first = make_adapter(state, name="base-bot", seed=1)
    second = make_adapter(state, name="bot", seed=2, parent=first.id)
    third = make_adapter(state, name="bot", seed=3, parent=second.id)
    body = client.get(f"/adapters/{third.id}").json()
    assert body["parent_adapter_id"] == second.id
    assert body["lineage"] == [
        {"id": second.id, "name": "bot", "version": 1},
        {"id": first.id, "name": "base-bot", "version": 1},
    ]
    listed = {a["id"]: a["lineage"] for a in client.get("/adapters").json()["items"]}
    assert [e["id"] for e in listed[third.id]] == [second.id, first.id]
    assert listed[first.id] == []


# ---------------------------------------------------------------------------- aliases


def test_alias_put_get_move_delete(client: TestClient, state: AppState):
    v1 = make_adapter(state, seed=1)
    v2 = make_adapter(state, seed=2)
    other = make_adapter(state, name="other", seed=3)

    assert client.get("/aliases/bot/prod").status_code == 404
    put1 = client.put("/aliases/bot/prod", json={"adapter_id": v1.id})
    assert put1.status_code == 200, put1.text
    assert client.get("/aliases/bot/prod").json()["adapter_id"] == v1.id
    assert client.get(f"/adapters/{v1.id}").json()["aliases"] == ["prod"]

    moved = client.put("/aliases/bot/prod", json={"adapter_id": v2.id}).json()
    assert (moved["adapter_id"], moved["version"]) == (v2.id, 2)
    assert client.get(f"/adapters/{v1.id}").json()["aliases"] == []
    assert client.get(f"/adapters/{v2.id}").json()["aliases"] == ["prod"]
    assert client.get("/aliases/bot/latest").json()["adapter_id"] == v2.id

    wrong_name = client.put("/aliases/bot/prod", json={"adapter_id": other.id})
    assert wrong_name.status_code == 422
    assert "named 'other'" in wrong_name.json()["detail"]
    unknown = client.put("/aliases/bot/prod", json={"adapter_id": "ad_00000000000000000000000000"})
    assert unknown.status_code == 422
    assert client.put("/aliases/bot/-bad", json={"adapter_id": v1.id}).status_code == 422
    assert client.put("/aliases/bot/latest", json={"adapter_id": v1.id}).status_code == 422
    assert client.put("/aliases/bot/prod", json={}).status_code == 422

    assert client.delete("/aliases/bot/prod").status_code == 204
    assert client.get("/aliases/bot/prod").status_code == 404
    assert client.delete("/aliases/bot/prod").status_code == 404


# ---------------------------------------------------------------------------- deletion


def test_delete_refused_while_held_then_blobs_collected(client: TestClient, state: AppState):
    doomed = make_adapter(state, seed=1)
    keeper = make_adapter(state, seed=2)  # same adapter_config.json bytes as `doomed`
    child = make_adapter(state, seed=3, parent=doomed.id)
    shared = {f.name: f.sha256 for f in doomed.files}
    assert shared["adapter_config.json"] in {f.sha256 for f in keeper.files}

    client.put("/aliases/bot/prod", json={"adapter_id": doomed.id})
    refused = client.delete(f"/adapters/{doomed.id}")
    assert refused.status_code == 409
    assert "bot@prod" in refused.json()["detail"]
    client.delete("/aliases/bot/prod")

    with state.sessions() as session:
        job = make_job(session, state=JobState.queued, parent=doomed.id)
        session.commit()
    refused = client.delete(f"/adapters/{doomed.id}")
    assert refused.status_code == 409
    assert job.id in refused.json()["detail"] and "queued" in refused.json()["detail"]
    assert client.post(f"/jobs/{job.id}/cancel").status_code == 200

    assert client.delete(f"/adapters/{doomed.id}").status_code == 204
    assert client.get(f"/adapters/{doomed.id}").status_code == 404
    assert client.delete(f"/adapters/{doomed.id}").status_code == 404
    assert not state.store.exists(shared["adapter_model.safetensors"])
    assert state.store.exists(shared["adapter_config.json"])  # still keeper's
    assert client.get(f"/adapters/{keeper.id}/files/adapter_config.json").status_code == 200
    assert client.get(f"/adapters/{child.id}").json()["parent_adapter_id"] is None


# ---------------------------------------------------------------------------- downloads


def test_file_download_range_etag_and_archive(client: TestClient, state: AppState):
    adapter = make_adapter(state)
    weights = next(f for f in adapter.files if f.name == "adapter_model.safetensors")
    expected = state.store.open(weights.sha256).read()
    url = f"/adapters/{adapter.id}/files/adapter_model.safetensors"

    whole = client.get(url)
    assert whole.status_code == 200 and whole.content == expected
    assert whole.headers["etag"] == f'"{weights.sha256}"'
    assert whole.headers["accept-ranges"] == "bytes"

    cut = 1000
    head = client.get(url, headers={"Range": f"bytes=0-{cut - 1}"})
    tail = client.get(url, headers={"Range": f"bytes={cut}-", "If-Range": f'"{weights.sha256}"'})
    assert (head.status_code, tail.status_code) == (206, 206)
    assert tail.headers["content-range"] == f"bytes {cut}-{len(expected) - 1}/{len(expected)}"
    assert head.content + tail.content == expected

    assert client.get(url, headers={"If-None-Match": f'"{weights.sha256}"'}).status_code == 304
    bad = client.get(url, headers={"Range": f"bytes={len(expected) + 10}-"})
    assert bad.status_code == 416
    assert bad.headers["content-range"] == f"bytes */{len(expected)}"
    assert client.get(f"/adapters/{adapter.id}/files/model.bin").status_code == 404
    assert client.head(url).headers["content-length"] == str(len(expected))

    archive = client.get(f"/adapters/{adapter.id}/archive")
    assert archive.status_code == 200
    assert archive.headers["content-type"] == "application/x-tar"
    assert "bot-v1.tar" in archive.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        unpacked = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert unpacked == {f.name: state.store.open(f.sha256).read() for f in adapter.files}
    again = client.get(f"/adapters/{adapter.id}/archive")
    assert again.content == archive.content
    cached = client.get(
        f"/adapters/{adapter.id}/archive", headers={"If-None-Match": archive.headers["etag"]}
    )
    assert cached.status_code == 304
    assert client.get("/adapters/ad_00000000000000000000000000/archive").status_code == 404


# ---------------------------------------------------------------------------- checkpoints


def checkpoint_files(store: ArtifactStore, step: int, *, lora: bool = True) -> list[FileRef]:
    state = put(store, "trainer_state.json", json.dumps({"step": step}).encode())
    optim = put(store, "optimizer.safetensors", safetensors_bytes(64, 1000 + step))
    if not lora:
        return [
            state,
            optim,
            put(store, "model/config.json", b"{}"),
            put(store, "model/model.safetensors", safetensors_bytes(64, 2000 + step)),
        ]
    return [
        state,
        optim,
        *(
            FileRef(name=f"adapter/{f.name}", sha256=f.sha256, size=f.size)
            for f in lora_files(store, seed=step)
        ),
    ]


def test_checkpoints_record_list_download_and_prune(client: TestClient, state: AppState):
    with state.sessions() as session:
        job = make_job(session, state=JobState.running)
        saved = [
            record_checkpoint(
                session,
                job,
                step=s,
                attempt=1,
                files=checkpoint_files(state.store, s),
                store=state.store,
            )
            for s in (10, 20, 30, 40)
        ]
        again = record_checkpoint(
            session,
            job,
            step=20,
            attempt=1,
            files=checkpoint_files(state.store, 20),
            store=state.store,
        )
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
        record_checkpoint(
            session,
            job,
            step=5,
            attempt=1,
            files=checkpoint_files(state.store, 5, lora=False),
            store=state.store,
        )
        session.commit()
    (item,) = client.get(f"/jobs/{job.id}/checkpoints").json()["items"]
    assert (item["kind"], item["lora_path"]) == ("full", None)


def test_checkpoint_files_follow_the_same_rules(state: AppState):
    with state.sessions() as session:
        job = make_job(session, state=JobState.running)
        with pytest.raises(InvalidArtifact, match="pickle"):
            record_checkpoint(
                session,
                job,
                step=1,
                attempt=1,
                store=state.store,
                files=[put(state.store, "optimizer.pt", b"PK\x03\x04")],
            )
        with pytest.raises(InvalidArtifact, match="not uploaded"):
            record_checkpoint(
                session,
                job,
                step=1,
                attempt=1,
                store=state.store,
                files=[FileRef(name="a.json", sha256="1" * 64, size=1)],
            )


def test_in_use_is_a_conflict_error(state: AppState):
    adapter = make_adapter(state)
    with state.sessions() as session:
        make_job(session, state=JobState.running, parent=adapter.id)
        with pytest.raises(Conflict):
            delete_adapter(session, adapter.id)


def test_sweep_collects_old_unreferenced_blobs_only(settings):
    """An upload whose result was refused is collected once past the grace period; a blob a
    row refers to, or a fresh one, is kept; a re-put makes an old blob fresh again."""
    import os
    import time
    from datetime import timedelta

    from db.engine import make_engine, make_sessionmaker
    from service.artifacts import LocalArtifactStore

    store = LocalArtifactStore(settings.artifacts_dir)
    orphan = store.put_bytes(b"refused upload")
    fresh = store.put_bytes(b"just uploaded")
    reput = store.put_bytes(b"uploaded again")
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        kept = store.put_bytes(b"a dataset")
        session.add(models.Dataset(id="ds_" + "0" * 26, name="d", sha256=kept.sha256,
                                   size=kept.size, rows=1, keys=[]))
        session.commit()
        old = time.time() - 7200
        for blob in (orphan, kept, reput):
            os.utime(store.local_path(blob.sha256), (old, old))
        store.put_bytes(b"uploaded again")  # re-put: fresh again
        deleted = sweep_blobs(session, store, timedelta(hours=1))
    engine.dispose()
    assert deleted == [orphan.sha256]
    assert not store.exists(orphan.sha256)
    assert all(store.exists(b.sha256) for b in (kept, fresh, reput))


def test_downloads_hold_no_database_connection_while_streaming(client: TestClient, state: AppState):
    """A request's session closes when its endpoint returns, before the body is sent: a slow
    client downloading a large file must not keep a pooled connection (and, on SQLite, a read
    snapshot) for the whole transfer."""
    adapter = make_adapter(state)
    paths = [f"/adapters/{adapter.id}/files/adapter_model.safetensors",
             f"/adapters/{adapter.id}/archive", f"/adapters/{adapter.id}"]
    checked_out: dict[str, list[int]] = {p: [] for p in paths}

    async def get(path: str) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                 "root_path": "", "query_string": b"", "server": ("testserver", 80),
                 "client": ("127.0.0.1", 1), "headers": [
                     (b"host", b"testserver"),
                     (b"authorization", client.headers["Authorization"].encode())]}

        requested, done = False, anyio.Event()

        async def receive() -> dict:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                assert message["status"] == 200, message
            if message["type"] == "http.response.body":
                checked_out[path].append(state.engine.pool.checkedout())
                if not message.get("more_body"):
                    done.set()

        await client.app(scope, receive, send)

    for path in paths:
        client.portal.call(get, path)
    assert all(counts and set(counts) == {0} for counts in checked_out.values()), checked_out


def test_collecting_garbage_is_best_effort(state: AppState, monkeypatch: pytest.MonkeyPatch):
    """A blob that cannot be deleted after a commit is left to the sweep; the others go, and
    the caller (a delete or a worker's finish, already committed) gets no error."""
    blobs = [put(state.store, f"f{i}", f"bytes {i}".encode()).sha256 for i in range(3)]
    stuck = sorted(blobs)[1]
    delete = state.store.delete

    def failing_delete(sha256: str) -> bool:
        if sha256 == stuck:
            raise PermissionError(f"cannot remove {sha256}")
        return delete(sha256)

    monkeypatch.setattr(state.store, "delete", failing_delete)
    with state.sessions() as session:
        deleted = collect_garbage(session, state.store, blobs)
    assert sorted(deleted) == sorted(set(blobs) - {stuck})
    assert state.store.exists(stuck) and not any(state.store.exists(b) for b in deleted)
