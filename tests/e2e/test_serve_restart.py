"""`loraplane serve` as a real process: what is acknowledged survives a restart."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.live import LiveServer
from tests.specs import model_spec

SPEC = model_spec()


def test_job_survives_a_restart_of_serve(db_url: str, tmp_path: Path):
    server = LiveServer(tmp_path / "data", db_url).start()
    try:
        with server.client() as client:
            job = client.post("/jobs", json=SPEC).json()
            assert job["state"] == "queued"
        server.stop(signal.SIGKILL)  # no graceful shutdown: the commit alone must hold it
        server.start()
        with server.client() as client:
            again = client.get(f"/jobs/{job['id']}")
            assert again.status_code == 200
            assert again.json()["spec"] == job["spec"]
            assert again.json()["state"] == "queued"
    finally:
        server.stop()
        server.kill()
