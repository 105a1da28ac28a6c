"""The durable queue's service functions with a session, on SQLite and PostgreSQL: N claimers
claim M jobs exactly once each, and record_state moves a job only as the transition table
allows."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from db.engine import make_engine, make_sessionmaker
from service import queue
from service.jobs import submit_job
from service.spec import parse_spec
from tests.specs import model_spec


def _enqueue(url: str, count: int) -> list[str]:
    engine = make_engine(url)
    parsed = parse_spec(model_spec())
    with make_sessionmaker(engine)() as session:
        ids = [submit_job(session, parsed, max_attempts=3).id for _ in range(count)]
        session.commit()
    engine.dispose()
    return ids


def _claim_all(url: str, workers: int) -> list[str]:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    claimed: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def claimer(n: int) -> None:
        try:
            while True:
                with sessions() as session:
                    got = queue.claim_next(session, worker_id=f"w{n}", lease_seconds=60)
                    session.commit()
                if got is None:
                    return
                with lock:
                    claimed.append(got[1].job.id)
        except BaseException as exc:  # noqa: BLE001 (surfaced below, in the test's thread)
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    assert not errors, errors
    return claimed


def test_concurrent_claimers_claim_each_job_exactly_once(db_url: str):
    big = db_url.startswith("postgresql")
    jobs, workers = (500, 16) if big else (120, 6)
    ids = _enqueue(db_url, jobs)
    claimed = _claim_all(db_url, workers)
    twice = [job for job, n in Counter(claimed).items() if n > 1]
    assert not twice, f"claimed more than once: {twice[:5]}"
    assert sorted(claimed) == sorted(ids), "a job was lost"


def test_record_state_refuses_moves_the_transition_table_does_not_allow(db_url: str) -> None:
    """A finished job never moves again, and a cancel in progress only ends cancelled."""
    from db import models
    from service.errors import Conflict
    from service.jobs import record_state
    from service.schemas import TRANSITIONS, JobState

    assert TRANSITIONS[JobState.cancelling] == {JobState.cancelled}
    [job_id] = _enqueue(db_url, 1)
    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as session:
        row = session.get(models.Job, job_id)
        for old, new in [("succeeded", JobState.queued), ("cancelled", JobState.running),
                         ("cancelling", JobState.succeeded), ("queued", JobState.succeeded)]:
            row.state = old
            with pytest.raises(Conflict) as err:
                record_state(session, row, new)
            assert err.value.code == "invalid_transition"
            assert row.state == old
        row.state = "running"
        record_state(session, row, JobState.cancelling)
        assert row.state == "cancelling"
    engine.dispose()
