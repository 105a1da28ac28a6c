"""service.tasks with a session on SQLite and PostgreSQL: an evaluation is a job of its own
kind in the one queue (claimed with its kind and task, retried when its lease runs out), and
its result is stored under the lease only, for the right kind, unless it was cancelled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db import models
from db.base import utcnow
from db.engine import make_engine, make_sessionmaker
from service import dispatch, queue, tasks
from service.errors import Conflict, InvalidRequest, LeaseLost
from service.jobs import cancel_job
from service.schemas import (
    Claim,
    EvaluationCreate,
    EvaluationResults,
    JobKind,
    JobState,
    SampleCreate,
    SampleResults,
    TaskResult,
)
from service.settings import Settings
from tests.factories import make_job

RESULTS = EvaluationResults(loss=1.5, perplexity=4.48, exact_match=0.5, exact_matches=1, rows=2,
                            tokens=6, examples=[])


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _claim(sessions: sessionmaker[Session], settings: Settings) -> Claim:
    with sessions() as session:
        claimed = dispatch.claim(session, settings, worker_id="w1")
        session.commit()
    assert claimed is not None
    return claimed


def _evaluation(sessions: sessionmaker[Session], settings: Settings) -> Claim:
    with sessions() as session:
        evaluation = tasks.submit_evaluation(session, settings, EvaluationCreate(
            base_model="demo-tiny-llama", dataset="demo", max_samples=2, max_new_tokens=5))
        session.commit()
    claimed = _claim(sessions, settings)
    assert claimed.job.id == evaluation.id
    return claimed


def _finish(sessions: sessionmaker[Session], claimed: Claim, result: TaskResult,
            lease: str | None = None):
    with sessions() as session:
        job = tasks.finish_task(session, claimed.job.id, lease or claimed.lease_id, result)
        session.commit()
        return job


def test_a_claimed_evaluation_carries_its_kind_and_task(sessions, settings: Settings) -> None:
    claimed = _evaluation(sessions, settings)
    assert claimed.kind is JobKind.evaluation and claimed.job.kind is JobKind.evaluation
    assert claimed.task is not None and claimed.task.max_new_tokens == 5
    assert claimed.job.spec["actor"]["model"]["model_path"] == "demo-tiny-llama"
    assert claimed.job.spec["data"]["train_data_paths"] == ["demo"]
    assert claimed.job.spec["data"]["max_samples"] == 2
    assert claimed.lora_source is None and claimed.checkpoint is None


def test_the_result_is_stored_under_the_lease_for_the_right_kind_only(
    sessions, settings: Settings
) -> None:
    claimed = _evaluation(sessions, settings)
    with pytest.raises(LeaseLost):
        _finish(sessions, claimed, TaskResult(evaluation=RESULTS), lease="ls_stale")
    with pytest.raises(InvalidRequest) as wrong:
        _finish(sessions, claimed, TaskResult(sample=SampleResults(completions=[])))
    assert wrong.value.code == "task_result_mismatch"

    job = _finish(sessions, claimed, TaskResult(evaluation=RESULTS))
    assert job.state is JobState.succeeded and job.metrics["loss"] == 1.5
    with sessions() as session:
        evaluation = tasks.get_evaluation(session, claimed.job.id)
    assert evaluation.results == RESULTS and evaluation.attempt == 1
    with pytest.raises(LeaseLost):  # the lease ended with the job
        _finish(sessions, claimed, TaskResult(evaluation=RESULTS))


def test_a_cancelled_evaluation_keeps_no_result(sessions, settings: Settings) -> None:
    claimed = _evaluation(sessions, settings)
    with sessions() as session:
        assert cancel_job(session, claimed.job.id).state is JobState.cancelling
        session.commit()
    assert _finish(sessions, claimed, TaskResult(evaluation=RESULTS)).state is JobState.cancelled
    with sessions() as session:
        assert tasks.get_evaluation(session, claimed.job.id).results is None


def test_a_training_job_cannot_finish_with_a_task_result(sessions, settings: Settings) -> None:
    with sessions() as session:
        make_job(session, state=JobState.queued)
        session.commit()
    claimed = _claim(sessions, settings)
    assert claimed.kind is JobKind.training and claimed.task is None
    with pytest.raises(Conflict) as refused:
        _finish(sessions, claimed, TaskResult(evaluation=RESULTS))
    assert refused.value.code == "wrong_job_kind"


def test_a_lost_lease_queues_a_sample_again_like_a_training_job(
    sessions, settings: Settings
) -> None:
    with sessions() as session:
        sample = tasks.submit_sample(session, settings, SampleCreate(
            base_model="demo-tiny-llama", prompts=["a", "b"], temperature=0.5, seed=3))
        session.commit()
    claimed = _claim(sessions, settings)
    assert claimed.kind is JobKind.sample and claimed.datasets == {}
    assert claimed.task.prompts == ["a", "b"] and claimed.task.seed == 3
    with sessions() as session:
        session.get(models.Job, sample.id).lease_expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
    with sessions() as session:
        assert queue.expire_leases(session) == 1
        session.commit()
    again = _claim(sessions, settings)
    assert again.job.id == sample.id and again.job.attempt == 2
    done = _finish(sessions, again, TaskResult(sample=SampleResults(completions=[])))
    assert done.state is JobState.succeeded
