"""A worker's report survives its API losing the database for a moment.

The database ends every connection of the API's pool (as a restart or failover would) between
a claim and the worker's next report. The pool hands out a connection in steady use without
pinging it (db/engine.py), so that report's first statement fails and the API answers 503
`database_unavailable`; the worker client sends it again, and it lands: the job's attempt is
not lost to a moment's outage.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tests.factories import SERVER, as_caller
from tests.specs import model_spec
from worker.client import WorkerClient


def _end_every_connection_to(url: str) -> int:
    """pg_terminate_backend on every other backend of `url`'s database: how many."""
    killer = create_engine(url, poolclass=NullPool)
    try:
        with killer.connect() as conn:
            return conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"),
                {"db": make_url(url).database}).scalar()
    finally:
        killer.dispose()


def test_a_report_answered_503_is_sent_again_and_lands(client: TestClient, settings):
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL server ending the API's connections")
    client.post("/jobs", json=model_spec()).raise_for_status()
    statuses: list[int] = []
    http = as_caller(client, client.headers["Authorization"].removeprefix("Bearer "))
    http.event_hooks["response"].append(lambda r: statuses.append(r.status_code))
    worker = WorkerClient(SERVER, http=http, retry_seconds=10)

    claim = worker.claim("w", wait_seconds=0, device="cpu")
    assert claim is not None
    assert _end_every_connection_to(settings.database_url) >= 1

    job = worker.fail(claim.job.id, claim.lease_id, code="bench", message="done",
                      retryable=False)
    assert job.state.value == "failed"
    assert 503 in statuses and statuses[-1] == 200, statuses  # answered 503, then sent again


def test_a_503_that_outlasts_the_retry_window_is_the_servers_error():
    """Past `retry_seconds` the 503 is raised with its code, as any other server error."""
    from worker.client import ServerError

    def always_503(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"code": "database_unavailable", "detail": "away",
                                         "status": 503, "title": "x", "type": "about:blank"},
                              headers={"content-type": "application/problem+json"})

    worker = WorkerClient(SERVER, http=httpx.Client(base_url=SERVER,
                                                    transport=httpx.MockTransport(always_503)),
                          retry_seconds=0.5)
    with pytest.raises(ServerError) as failed:
        worker.fail("job_x", "ls_x", code="c", message="m", retryable=False)
    assert failed.value.code == "database_unavailable"
