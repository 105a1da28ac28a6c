"""service.dispatch, the worker protocol's steps, called with a session on SQLite and PostgreSQL:
a claim carries the job's inputs, a claim whose lora source vanished fails that job as a user
error and claims the next, checkpoints are recorded under the lease, and completion registers
the adapter and prunes old checkpoints, or, for a job cancelled meanwhile, registers nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db import models
from db.engine import make_engine, make_sessionmaker
from service import dispatch
from service.artifacts import ArtifactStore, open_store
from service.errors import LeaseLost, NotFound
from service.jobs import cancel_job
from service.registry.checkpoints import latest_checkpoint
from service.schemas import CheckpointUpload, Claim, JobState
from service.settings import Settings
from tests.factories import (
    add_checkpoint,
    checkpoint_files,
    lora_result,
    make_adapter,
    make_job,
    put,
)


@dataclass
class Server:
    """What dispatch needs of a server: settings, sessions, the artifact store."""

    settings: Settings
    sessions: sessionmaker[Session]
    store: ArtifactStore


@pytest.fixture
def server(settings: Settings) -> Iterator[Server]:
    engine = make_engine(settings.database_url)
    yield Server(settings, make_sessionmaker(engine), open_store(settings))
    engine.dispose()


def queue_job(server: Server, **kwargs) -> str:
    """A queued job (make_job's arguments), committed: its id."""
    with server.sessions() as session:
        job = make_job(session, state=JobState.queued, **kwargs)
        session.commit()
        return job.id


def claim(server: Server) -> Claim | None:
    with server.sessions() as session:
        claimed = dispatch.claim(session, server.settings, worker_id="w1")
        session.commit()
        return claimed


def running_job(server: Server, **kwargs) -> Claim:
    """A job queued (make_job's arguments) and claimed: the claim."""
    job_id = queue_job(server, **kwargs)
    claimed = claim(server)
    assert claimed is not None and claimed.job.id == job_id
    return claimed


def upload(server: Server, claimed: Claim, step: int) -> None:
    """A checkpoint at `step`, uploaded and recorded under the claim's lease."""
    with server.sessions() as session:
        dispatch.add_checkpoint(session, server.store, claimed.job.id, claimed.lease_id,
                                CheckpointUpload(step=step,
                                                 files=checkpoint_files(server.store, step)),
                                base_url=None)
        session.commit()


def job_row(server: Server, job_id: str) -> models.Job:
    with server.sessions() as session:
        row = session.get(models.Job, job_id)
        assert row is not None
        session.expunge(row)
        return row


def adapter_count(server: Server) -> int:
    with server.sessions() as session:
        return session.scalar(select(func.count()).select_from(models.Adapter))


def test_a_claim_carries_the_adapter_to_continue_and_the_checkpoint_to_resume(server: Server):
    parent = make_adapter(server, name="parent", seed=1)
    job_id = queue_job(server, parent=parent.id)
    with server.sessions() as session:  # an earlier attempt saved step 5
        add_checkpoint(session, server.store, session.get(models.Job, job_id), 5)
        session.commit()

    claimed = claim(server)
    assert claimed is not None
    assert (claimed.job.id, claimed.job.state, claimed.job.attempt) == (job_id, JobState.running, 1)
    source = claimed.lora_source
    assert (source.kind, source.adapter_id, source.rank, source.lora_path) == (
        "adapter", parent.id, 8, parent.id)
    assert [(f.name, f.sha256, f.size, f.url) for f in source.files] == [
        (f.name, f.sha256, f.size, f"/worker/jobs/{job_id}/inputs/{f.sha256}")
        for f in parent.files]
    resume = claimed.checkpoint
    assert resume is not None and resume.step == 5
    assert {f.name for f in resume.files} == {
        "trainer_state.json", "optimizer.safetensors", "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors"}
    assert claimed.datasets == {}

    with server.sessions() as session:
        for f in [*source.files, *resume.files]:
            assert dispatch.input_blob(session, job_id, claimed.lease_id, f.sha256) == f.size
        unrelated = put(server.store, "other.json", b"{}").sha256
        with pytest.raises(NotFound):
            dispatch.input_blob(session, job_id, claimed.lease_id, unrelated)
        with pytest.raises(LeaseLost):
            dispatch.input_blob(session, job_id, "ls_" + "0" * 26, source.files[0].sha256)


def test_a_claim_whose_lora_source_vanished_fails_that_job_and_claims_the_next(server: Server):
    parent = make_adapter(server, name="parent")
    stale = queue_job(server, parent=parent.id)
    with server.sessions() as session:  # as migration 0002 leaves a job whose spec was stale
        session.get(models.Job, stale).parent_adapter_id = None
        session.commit()
    fine = queue_job(server, name="fine")

    claimed = claim(server)
    assert claimed is not None and claimed.job.id == fine
    failed = job_row(server, stale)
    assert failed.state == "failed"
    message = f"lora_path {parent.id!r}: the adapter it named at submit is gone"
    assert failed.error == {"code": "invalid_lora_path", "message": message, "retryable": False}
    assert failed.attempt == 1  # a user error: not retried
    assert claim(server) is None  # nothing else queued; the failed job stays failed
    assert job_row(server, stale).state == "failed"


def test_add_checkpoint_records_under_the_lease_only(server: Server):
    claimed = running_job(server)
    job_id = claimed.job.id
    upload(server, claimed, 3)
    with server.sessions() as session:
        latest = latest_checkpoint(session, job_id)
        assert (latest.step, latest.attempt) == (3, 1)
        stale = CheckpointUpload(step=4, files=checkpoint_files(server.store, 4))
        with pytest.raises(LeaseLost):
            dispatch.add_checkpoint(session, server.store, job_id, "ls_" + "0" * 26, stale,
                                    base_url=None)
        session.rollback()
        assert latest_checkpoint(session, job_id).step == 3


def test_complete_registers_the_adapter_and_prunes_old_checkpoints(server: Server):
    server.settings.checkpoints_keep = 2
    claimed = running_job(server, name="bot")
    job_id = claimed.job.id
    for step in (1, 2, 3, 4):
        upload(server, claimed, step)
    with server.sessions() as session:
        files = {ck.step: {f["sha256"] for f in ck.files} for ck in session.scalars(
            select(models.Checkpoint).where(models.Checkpoint.job_id == job_id))}
        result = lora_result(server.store)
        job, freed = dispatch.complete(session, server.store, server.settings, job_id,
                                       claimed.lease_id, result, base_url=None)
        session.commit()
    # Blobs of steps 1 and 2 are freed, except those a kept checkpoint or the adapter holds
    # (every adapter_config.json here has the same bytes).
    held = files[3] | files[4] | {f.sha256 for f in result.files}
    assert (files[1] | files[2]) & held

    assert job.state == JobState.succeeded and job.error is None
    adapter = job_row(server, job_id).adapter_id
    assert job.adapter_id == adapter and adapter is not None
    with server.sessions() as session:
        row = session.get(models.Adapter, adapter)
        assert (row.name, row.version, row.job_id) == ("bot", 1, job_id)
        kept = session.scalars(select(models.Checkpoint.step).where(
            models.Checkpoint.job_id == job_id, models.Checkpoint.pruned.is_(False),
        ).order_by(models.Checkpoint.step)).all()
    assert kept == [3, 4]
    assert set(freed) == (files[1] | files[2]) - held
    assert all(server.store.exists(sha) for sha in freed)  # collected after the commit

    with server.sessions() as session, pytest.raises(LeaseLost):  # the lease ended with the job
        dispatch.complete(session, server.store, server.settings, job_id, claimed.lease_id,
                          lora_result(server.store), base_url=None)


def test_complete_of_a_cancelling_job_ends_cancelled_with_no_adapter(server: Server):
    claimed = running_job(server)
    job_id = claimed.job.id
    upload(server, claimed, 1)
    with server.sessions() as session:
        assert cancel_job(session, job_id).state == JobState.cancelling
        session.commit()
    with server.sessions() as session:
        job, freed = dispatch.complete(session, server.store, server.settings, job_id,
                                       claimed.lease_id, lora_result(server.store),
                                       base_url=None)
        session.commit()
    assert (job.state, job.adapter_id, freed) == (JobState.cancelled, None, [])
    assert job_row(server, job_id).adapter_id is None
    assert adapter_count(server) == 0
