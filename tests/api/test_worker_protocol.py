"""The worker protocol over HTTP: claim order, leases and fencing, recovery, user and system
errors, cancel, release, reports, the long-poll, the event stream (the claim's exactly-once
guarantee and the state table: tests/service/test_queue.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.settings import Settings
from tests.conftest import authenticate_as_admin
from tests.specs import model_spec

SPEC = model_spec()


def test_claim_order_priority_then_age(client: TestClient):
    low = client.post("/jobs", json=SPEC).json()
    high = client.post("/jobs", json={**SPEC, "priority": 5}).json()
    second_low = client.post("/jobs", json=SPEC).json()
    order = [client.post("/worker/claim", json={"worker_id": "w"}).json()["job"]["id"]
             for _ in range(3)]
    assert order == [high["id"], low["id"], second_low["id"]]
    assert client.post("/worker/claim", json={"worker_id": "w"}).status_code == 204


def _app_with_lease(db_url: str, tmp_path: Path, seconds: float):
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url, lease_seconds=seconds,
                        max_attempts=2, queue_poll_seconds=0.05)
    from api.app import create_app

    with TestClient(create_app(settings)) as client:
        authenticate_as_admin(client, settings)
        yield client


@pytest.fixture
def short_lease(db_url: str, tmp_path: Path):
    yield from _app_with_lease(db_url, tmp_path, 0.4)


@pytest.fixture
def lease_of_a_second(db_url: str, tmp_path: Path):
    """Long enough that a loaded machine's pause between two beats does not end it."""
    yield from _app_with_lease(db_url, tmp_path, 1.0)


def _lease(lease_id: str) -> dict[str, str]:
    return {"X-Loraplane-Lease": lease_id}


def _wait_state(client: TestClient, job_id: str, state: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] == state:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {state}: {job}")


def test_expired_lease_requeues_and_fences_the_old_holder(short_lease: TestClient):
    client = short_lease
    job = client.post("/jobs", json=SPEC).json()
    old = client.post("/worker/claim", json={"worker_id": "old"}).json()
    assert old["job"]["attempt"] == 1
    requeued = _wait_state(client, job["id"], "queued")  # the sweeper saw the lease run out
    assert requeued["error"]["code"] == "worker_lost"
    new = client.post("/worker/claim", json={"worker_id": "new"}).json()
    assert new["job"]["id"] == job["id"]
    assert new["job"]["attempt"] == 2

    stale_beat = client.post(f"/jobs/{job['id']}/heartbeat".replace("/jobs", "/worker/jobs"),
                             headers=_lease(old["lease_id"]))
    assert stale_beat.status_code == 409
    assert stale_beat.json()["code"] == "lease_lost"
    stale_fail = client.post(f"/worker/jobs/{job['id']}/fail", headers=_lease(old["lease_id"]),
                             json={"code": "x", "message": "stale", "retryable": False})
    assert stale_fail.status_code == 409
    stale_report = client.post(f"/worker/jobs/{job['id']}/events", headers=_lease(old["lease_id"]),
                               json={"events": [{"kind": "log", "data": {"line": "stale"}}],
                                     "step": 99})
    assert stale_report.status_code == 409

    now = client.get(f"/jobs/{job['id']}").json()
    assert now["state"] == "running"
    assert now["worker_id"] == "new"
    assert now["progress"]["step"] == 0
    lines = [e for e in client.get(f"/jobs/{job['id']}/events").json()["items"]
             if e["kind"] == "log"]
    assert lines == []


def test_last_attempt_lost_fails_with_worker_lost(short_lease: TestClient):
    client = short_lease
    job = client.post("/jobs", json=SPEC).json()
    for _ in range(2):  # max_attempts = 2
        client.post("/worker/claim", json={"worker_id": "w", "wait_seconds": 5})
        time.sleep(0.5)
    failed = _wait_state(client, job["id"], "failed")
    assert failed["error"]["code"] == "worker_lost"
    assert failed["attempt"] == 2


def test_heartbeat_extends_the_lease(lease_of_a_second: TestClient):
    client = lease_of_a_second
    job = client.post("/jobs", json=SPEC).json()
    lease = client.post("/worker/claim", json={"worker_id": "w"}).json()
    for _ in range(30):  # 3 s of heartbeats, a tenth of the 1 s lease apart
        beat = client.post(f"/worker/jobs/{job['id']}/heartbeat", headers=_lease(lease["lease_id"]))
        assert beat.status_code == 200
        assert beat.json()["cancel_requested"] is False
        time.sleep(0.1)
    assert client.get(f"/jobs/{job['id']}").json()["state"] == "running"


def _submit_claim_and_fail(client: TestClient, code: str, message: str, *,
                           retryable: bool) -> dict:
    """A new job, claimed and failed by its worker: the job as the failure left it."""
    job = client.post("/jobs", json=SPEC).json()
    lease = client.post("/worker/claim", json={"worker_id": "w"}).json()
    assert lease["job"]["id"] == job["id"]
    return client.post(f"/worker/jobs/{job['id']}/fail", headers=_lease(lease["lease_id"]),
                       json={"code": code, "message": message, "retryable": retryable}).json()


def test_user_error_fails_at_once_and_system_error_retries(client: TestClient):
    failed = _submit_claim_and_fail(client, "no_matching_modules", "no module matches",
                                    retryable=False)
    assert failed["state"] == "failed"
    assert failed["attempt"] == 1
    assert failed["error"]["code"] == "no_matching_modules"

    retried = _submit_claim_and_fail(client, "out_of_memory", "CUDA OOM", retryable=True)
    assert retried["state"] == "queued"
    again = client.post("/worker/claim", json={"worker_id": "w2"}).json()
    assert again["job"]["id"] == retried["id"]
    assert again["job"]["attempt"] == 2


def test_cancel_running_job_reaches_worker_on_heartbeat(client: TestClient):
    job = client.post("/jobs", json=SPEC).json()
    lease = client.post("/worker/claim", json={"worker_id": "w"}).json()
    assert client.post(f"/jobs/{job['id']}/cancel").json()["state"] == "cancelling"
    beat = client.post(f"/worker/jobs/{job['id']}/heartbeat", headers=_lease(lease["lease_id"]))
    assert beat.json()["cancel_requested"] is True
    done = client.post(f"/worker/jobs/{job['id']}/cancelled", headers=_lease(lease["lease_id"]))
    assert done.json()["state"] == "cancelled"
    states = [e["data"]["to"] for e in client.get(f"/jobs/{job['id']}/events").json()["items"]
              if e["kind"] == "state"]
    assert states == ["queued", "running", "cancelling", "cancelled"]


def test_release_hands_back_without_spending_an_attempt(client: TestClient):
    job = client.post("/jobs", json=SPEC).json()
    lease = client.post("/worker/claim", json={"worker_id": "w"}).json()
    back = client.post(f"/worker/jobs/{job['id']}/release", headers=_lease(lease["lease_id"]),
                       json={"reason": "SIGTERM"}).json()
    assert back["state"] == "queued"
    assert back["attempt"] == 0
    assert client.post(f"/worker/jobs/{job['id']}/heartbeat",
                       headers=_lease(lease["lease_id"])).status_code == 409
    again = client.post("/worker/claim", json={"worker_id": "w2"}).json()
    assert again["job"]["attempt"] == 1


def test_reported_progress_metrics_and_logs(client: TestClient):
    job = client.post("/jobs", json=SPEC).json()
    lease = client.post("/worker/claim", json={"worker_id": "w"}).json()
    body = {"events": [{"kind": "log", "data": {"line": "loaded model"}},
                       {"kind": "metrics", "data": {"step": 3, "loss": 1.5}}],
            "step": 3, "total": 10, "metrics": {"loss": 1.5, "lr": 0.001}}
    assert client.post(f"/worker/jobs/{job['id']}/events", headers=_lease(lease["lease_id"]),
                       json=body).status_code == 204
    now = client.get(f"/jobs/{job['id']}").json()
    assert now["progress"] == {"step": 3, "total": 10}
    assert now["metrics"] == {"loss": 1.5, "lr": 0.001}
    kinds = [e["kind"] for e in client.get(f"/jobs/{job['id']}/events").json()["items"]]
    assert kinds == ["state", "state", "log", "metrics"]

    # A report without metrics or a total keeps them; its events are stored in their order.
    lines = [{"kind": "log", "data": {"line": f"line {n}"}} for n in range(50)]
    assert client.post(f"/worker/jobs/{job['id']}/events", headers=_lease(lease["lease_id"]),
                       json={"events": lines, "step": 4}).status_code == 204
    now = client.get(f"/jobs/{job['id']}").json()
    assert now["progress"] == {"step": 4, "total": 10}
    assert now["metrics"] == {"loss": 1.5, "lr": 0.001}
    items = client.get(f"/jobs/{job['id']}/events", params={"limit": 100}).json()["items"]
    assert [e["data"] for e in items[4:]] == [line["data"] for line in lines]


def test_idle_worker_long_poll_wakes_on_submit(client: TestClient):
    result: dict = {}

    def wait_for_work() -> None:
        start = time.monotonic()
        response = client.post("/worker/claim", json={"worker_id": "idle", "wait_seconds": 20})
        result.update(status=response.status_code, body=response.json(),
                      waited=time.monotonic() - start)

    waiter = threading.Thread(target=wait_for_work)
    waiter.start()
    time.sleep(0.3)
    job = client.post("/jobs", json=SPEC).json()
    waiter.join(timeout=25)
    assert result["status"] == 200
    assert result["body"]["job"]["id"] == job["id"]
    assert result["waited"] < 20, "the claim waited out its whole long-poll"


def test_events_stream_follows_until_the_job_ends(client: TestClient):
    job = client.post("/jobs", json=SPEC).json()
    lease = client.post("/worker/claim", json={"worker_id": "w"}).json()

    def finish_later() -> None:
        time.sleep(0.5)
        client.post(f"/worker/jobs/{job['id']}/events", headers=_lease(lease["lease_id"]),
                    json={"events": [{"kind": "log", "data": {"line": "hello"}}]})
        client.post(f"/worker/jobs/{job['id']}/fail", headers=_lease(lease["lease_id"]),
                    json={"code": "dataset_empty", "message": "empty", "retryable": False})

    threading.Thread(target=finish_later).start()
    with client.stream("GET", f"/jobs/{job['id']}/events",
                       headers={"accept": "text/event-stream"}) as stream:
        text = stream.read().decode()
    assert "event: log" in text and '"hello"' in text
    assert '"to":"failed"' in text
    assert text.rstrip().endswith("data: {}")  # the closing `end` event


