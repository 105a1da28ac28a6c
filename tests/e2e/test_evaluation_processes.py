"""Real processes: a worker killed mid-evaluation loses nothing; the evaluation runs again
elsewhere and finishes."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.live import LiveServer, LiveWorker, wait_for_job

pytestmark = pytest.mark.slow

SERVER_ENV = {"LORAPLANE_LEASE_SECONDS": "2", "LORAPLANE_QUEUE_POLL_SECONDS": "0.1"}
ROWS = 60  # long enough (~0.1 s a row) that the kill lands well before the last row


def _wait_row(client: httpx.Client, job_id: str, row: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        evaluation = client.get(f"/jobs/{job_id}").json()
        if evaluation["progress"]["step"] >= row:
            return
        assert evaluation["state"] in ("queued", "running"), evaluation
        time.sleep(0.05)
    raise TimeoutError(f"evaluation {job_id} did not reach row {row}")


def test_killed_worker_mid_evaluation_does_not_lose_it(db_url: str, tmp_path: Path):
    with LiveServer(tmp_path / "api", db_url, env=SERVER_ENV) as server, server.client() as client:
        first = LiveWorker(server, tmp_path / "w1").start()
        try:
            created = client.post("/evaluations", json={
                "adapter": None, "base_model": "demo-tiny-llama", "dataset": "demo",
                "max_samples": ROWS, "max_new_tokens": 64}).json()
            _wait_row(client, created["id"], 3)
            first.signal(signal.SIGKILL)
            first.wait()
        finally:
            first.stop()
        assert client.get(f"/evaluations/{created['id']}").json()["results"] is None
        second = LiveWorker(server, tmp_path / "w2").start()
        try:
            wait_for_job(client, created["id"], {"succeeded", "failed"})
        finally:
            second.stop()
        done = client.get(f"/evaluations/{created['id']}").json()
        assert done["state"] == "succeeded", done["error"]
        assert done["attempt"] == 2
        results = done["results"]
        assert results["rows"] == ROWS and [e["index"] for e in results["examples"]] == list(
            range(ROWS))
        states = [e["data"] for e in client.get(f"/jobs/{created['id']}/events",
                                                params={"limit": 1000}).json()["items"]
                  if e["kind"] == "state"]
        assert any("expired" in str(s.get("reason", "")) for s in states)
