"""The registry's service functions with a session: registration and its file checks, versions
under concurrency, checkpoint file rules, deletion while in use, blob garbage collection."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from api.deps import AppState
from db import models
from service.errors import Conflict, InvalidArtifact
from service.registry.adapters import delete_adapter
from service.registry.blobs import collect_garbage, sweep_blobs
from service.registry.checkpoints import record_checkpoint
from service.registry.files import validate_file_name
from service.registry.register import register_adapter
from service.schemas import AdapterResult, FileRef, JobState
from tests.factories import lora_files, make_adapter, make_job, put
from tests.s3 import artifacts_url, s3_endpoint  # noqa: F401  (fixtures: both stores)

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


# ---------------------------------------------------------------------------- checkpoints and blobs


def test_checkpoint_files_follow_the_same_rules(state: AppState):
    with state.sessions() as session:
        job = make_job(session, state=JobState.running)
        for files, message in [([put(state.store, "optimizer.pt", b"PK\x03\x04")], "pickle"),
                               ([FileRef(name="a.json", sha256="1" * 64, size=1)], "not uploaded")]:
            with pytest.raises(InvalidArtifact, match=message):
                record_checkpoint(session, job, step=1, attempt=1, store=state.store, files=files)


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


@pytest.mark.parametrize(("name", "message"), [
    ("", "must be 1 to 255 characters"),
    ("x" * 256, "must be 1 to 255 characters"),
    ("adapter\tconfig.json", "backslash or a control character"),
    ("D:adapter.json", "is absolute"),
])
def test_the_name_check_refuses_what_the_request_schema_lets_through_or_not(name: str,
                                                                           message: str):
    """Names HTTP cannot deliver to the check (the schema bounds length) or that no HTTP test
    sends: the registry's own check still refuses them, naming the name."""
    with pytest.raises(InvalidArtifact) as info:
        validate_file_name(name)
    assert info.value.code == "unsafe_file_name"
    assert info.value.message.startswith(f"file name {name!r} ") and message in info.value.message
    assert validate_file_name("x" * 255) == "x" * 255
