"""What the hot paths cost the database: statements, transactions and pool checkouts per request.

Counted with SQLAlchemy's engine events on the app's own engine, on both databases, so a
change that adds a query (or a second transaction) to `GET /adapters/{id}` fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from fastapi.testclient import TestClient
from sqlalchemy import event

from api.deps import AppState
from tests.factories import bearer, make_adapter, make_token
from tests.specs import model_spec

LEASE = "X-Loraplane-Lease"


@dataclass
class Counts:
    statements: list[str] = field(default_factory=list)
    begins: int = 0
    checkouts: int = 0
    # Per statement on PostgreSQL: sent in autocommit (its own transaction: no BEGIN and no
    # COMMIT round trip around it).
    autocommit: list[bool] = field(default_factory=list)


@contextmanager
def counting(state: AppState) -> Iterator[Counts]:
    """Statements sent (`before_cursor_execute`), transactions begun, connections checked out."""
    counts = Counts()

    def on_statement(conn, _cursor, statement, *_args) -> None:
        counts.statements.append(" ".join(statement.split()))
        counts.autocommit.append(bool(getattr(conn.connection.dbapi_connection, "autocommit",
                                              False)))

    def on_begin(_conn) -> None:
        counts.begins += 1

    def on_checkout(*_args) -> None:
        counts.checkouts += 1

    engine = state.engine
    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "begin", on_begin)
    event.listen(engine.pool, "checkout", on_checkout)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "begin", on_begin)
        event.remove(engine.pool, "checkout", on_checkout)


def test_get_adapter_is_one_transaction_of_three_statements(client: TestClient, state: AppState):
    """The token check and the read share one connection and one transaction: the token, the
    adapter joined with its files, its evaluations and aliases in one union."""
    parent = make_adapter(state)
    child = make_adapter(state, parent=parent.id, seed=1)
    client.put("/aliases/bot/prod", json={"adapter_id": child.id}).raise_for_status()
    client.get(f"/adapters/{parent.id}").raise_for_status()  # warm: statement caches filled

    with counting(state) as counts:
        body = client.get(f"/adapters/{parent.id}").json()
    assert body["id"] == parent.id and len(body["files"]) == 2
    assert (counts.checkouts, counts.begins, len(counts.statements)) == (1, 1, 3), counts
    assert "api_tokens" in counts.statements[0]

    # A lineage costs one statement per level above the adapter, nothing else.
    with counting(state) as counts:
        body = client.get(f"/adapters/{child.id}").json()
    assert body["aliases"] == ["prod"] and [e["id"] for e in body["lineage"]] == [parent.id]
    assert (counts.checkouts, counts.begins, len(counts.statements)) == (1, 1, 4), counts


def test_get_adapter_of_another_project_is_404_in_the_same_single_transaction(
    client: TestClient, state: AppState
):
    """The project filter written into the hot path's statements still confines a user."""
    adapter = make_adapter(state)
    _, token = make_token(client, "user", project="elsewhere")
    with counting(state) as counts:
        r = client.get(f"/adapters/{adapter.id}", headers=bearer(token))
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert (counts.checkouts, counts.begins) == (1, 1), counts


def test_revoked_token_is_refused_on_its_next_get(client: TestClient, state: AppState):
    """No token cache: a revocation holds on the very next request."""
    adapter = make_adapter(state)
    token_id, token = make_token(client, "user")
    assert client.get(f"/adapters/{adapter.id}", headers=bearer(token)).status_code == 200
    client.delete(f"/tokens/{token_id}").raise_for_status()
    with counting(state) as counts:
        r = client.get(f"/adapters/{adapter.id}", headers=bearer(token))
    assert r.status_code == 401
    assert counts.checkouts == 1 and len(counts.statements) == 1, counts


def test_claim_is_one_round_trip_on_postgresql_and_finish_one_transaction(
        client: TestClient, state: AppState):
    """A claim on PostgreSQL: one statement in autocommit, the UPDATE that takes the job (its
    whole row back by RETURNING) with its state event and the checkpoint to resume from in it;
    on SQLite those three statements in one transaction. A finish (`fail`): the lease fence
    (the row back by RETURNING), then the state change, its event and the webhook outbox's
    subscription lookup (one statement on PostgreSQL, three on SQLite). Each after the token check, which has a connection of its own (a
    POST's body must not arrive while a write transaction is open), in autocommit on
    PostgreSQL."""
    postgres = state.engine.dialect.name == "postgresql"
    for _ in range(2):
        client.post("/jobs", json=model_spec()).raise_for_status()
    first = client.post("/worker/claim", json={"worker_id": "w"}).json()  # warm
    client.post(f"/worker/jobs/{first['job']['id']}/fail", headers={LEASE: first["lease_id"]},
                json={"code": "x", "message": "warm", "retryable": False}).raise_for_status()

    with counting(state) as counts:
        claim = client.post("/worker/claim", json={"worker_id": "w", "wait_seconds": 0}).json()
    assert claim["job"]["state"] == "running" and claim["job"]["started_at"] is not None
    assert claim["checkpoint"] is None
    assert counts.checkouts == 2, counts
    if postgres:
        assert len(counts.statements) == 1 + 1 and all(counts.autocommit), counts
        assert counts.statements[1].startswith("WITH claimed AS (UPDATE jobs")
        assert "INSERT INTO job_events" in counts.statements[1]
        assert "FROM checkpoints" in counts.statements[1]
    else:
        assert counts.begins == 2 and len(counts.statements) == 1 + 3, counts
        assert counts.statements[1].startswith("UPDATE jobs")
    assert "RETURNING" in counts.statements[1]
    events = client.get(f"/jobs/{claim['job']['id']}/events").json()["items"]
    assert events[-1]["data"] == {"from": "queued", "to": "running", "worker_id": "w",
                                  "attempt": 1}, events

    with counting(state) as counts:
        done = client.post(f"/worker/jobs/{claim['job']['id']}/fail",
                           headers={LEASE: claim["lease_id"]},
                           json={"code": "x", "message": "done", "retryable": False}).json()
    assert done["state"] == "failed"
    assert (counts.checkouts, counts.begins) == (2, 2), counts
    if postgres:  # the fence, then the change with its event and the subscriptions in one
        assert len(counts.statements) == 1 + 2 and counts.autocommit[1:] == [False] * 2, counts
        assert counts.statements[2].startswith("WITH changed AS (UPDATE jobs")
    else:
        assert len(counts.statements) == 1 + 4, counts
    assert counts.statements[1].startswith("UPDATE jobs") and "RETURNING" in counts.statements[1]

    with counting(state) as counts:  # a stale lease: the fence alone, nothing written
        r = client.post(f"/worker/jobs/{claim['job']['id']}/fail",
                        headers={LEASE: claim["lease_id"]},
                        json={"code": "x", "message": "again", "retryable": False})
    assert r.status_code == 409 and r.json()["code"] == "lease_lost"
    assert len(counts.statements) == 1 + 1, counts


def test_report_is_one_round_trip_on_postgresql(client: TestClient, state: AppState):
    """A progress report (log lines, metrics, progress): on PostgreSQL one statement in
    autocommit, the fence with the progress in it and the events inserted by it; on SQLite the
    fenced update and one insert per event in one transaction. A stale lease writes nothing."""
    postgres = state.engine.dialect.name == "postgresql"
    client.post("/jobs", json=model_spec()).raise_for_status()
    claim = client.post("/worker/claim", json={"worker_id": "w"}).json()
    job_id, lease = claim["job"]["id"], {LEASE: claim["lease_id"]}
    body = {"events": [{"kind": "log", "data": {"line": "a"}},
                       {"kind": "log", "data": {"line": "b"}}], "step": 1, "total": 5}
    client.post(f"/worker/jobs/{job_id}/events", headers=lease, json=body).raise_for_status()

    with counting(state) as counts:
        r = client.post(f"/worker/jobs/{job_id}/events", headers=lease, json=body)
    assert r.status_code == 204
    if postgres:
        assert len(counts.statements) == 1 + 1 and all(counts.autocommit), counts
        assert counts.statements[1].startswith("WITH reported AS (UPDATE jobs")
        assert "INSERT INTO job_events" in counts.statements[1]
    else:
        assert counts.begins == 2 and len(counts.statements) == 1 + 1 + 2, counts

    client.post(f"/worker/jobs/{job_id}/fail", headers=lease,
                json={"code": "x", "message": "end", "retryable": False}).raise_for_status()
    before = len(client.get(f"/jobs/{job_id}/events", params={"limit": 100}).json()["items"])
    r = client.post(f"/worker/jobs/{job_id}/events", headers=lease, json=body)
    assert r.status_code == 409 and r.json()["code"] == "lease_lost"
    after = client.get(f"/jobs/{job_id}/events", params={"limit": 100}).json()["items"]
    assert len(after) == before


def test_a_get_route_with_sessions_of_its_own_never_holds_two_connections(
    client: TestClient, state: AppState
):
    """`GET /jobs` reads in a session it opens itself: the gate's session (the token check)
    is closed before the route runs, so a request holds one pooled connection at a time and
    a burst of such requests cannot hold the whole pool while each waits for a second."""
    client.post("/jobs", json=model_spec()).raise_for_status()
    held, most = 0, 0

    def out(*_args) -> None:
        nonlocal held, most
        held += 1
        most = max(most, held)

    def back(*_args) -> None:
        nonlocal held
        held -= 1

    pool = state.engine.pool
    event.listen(pool, "checkout", out)
    event.listen(pool, "checkin", back)
    try:
        assert len(client.get("/jobs").json()["items"]) == 1
        assert client.get("/adapters").status_code == 200  # takes the gate's session
    finally:
        event.remove(pool, "checkout", out)
        event.remove(pool, "checkin", back)
    assert most == 1 and held == 0
