"""Real processes: workers killed mid-job, SIGTERM hand-back, the API killed under load."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.live import LiveServer, LiveWorker, wait_for_job

pytestmark = pytest.mark.slow

LONG = {
    "actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": True, "lora_rank": 4},
              "optim": {"lr": 0.005}, "micro_batch_size": 4, "global_batch_size": 8},
    "runner": {"max_steps": 240, "save_interval": 20},
}
SERVER_ENV = {"LORAPLANE_LEASE_SECONDS": "2", "LORAPLANE_QUEUE_POLL_SECONDS": "0.1"}


def _spec(name: str) -> dict:
    return {**LONG, "runner": {**LONG["runner"], "experiment_name": name}}


def _wait_step(client: httpx.Client, job_id: str, step: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["progress"]["step"] >= step:
            return job
        assert job["state"] in ("queued", "running"), job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} did not reach step {step}")


def _weights_sha(client: httpx.Client, job_id: str) -> str:
    job = client.get(f"/jobs/{job_id}").json()
    files = client.get(f"/adapters/{job['adapter_id']}").json()["files"]
    return next(f["sha256"] for f in files if f["name"] == "adapter_model.safetensors")


def test_killed_worker_job_resumes_elsewhere_bit_identical(db_url: str, tmp_path: Path):
    with LiveServer(tmp_path / "api", db_url, env=SERVER_ENV) as server, server.client() as client:
        first = LiveWorker(server, tmp_path / "w1").start()
        try:
            reference = client.post("/jobs", json=_spec("reference")).json()
            wait_for_job(client, reference["id"], {"succeeded"})

            job = client.post("/jobs", json=_spec("crashed")).json()
            _wait_step(client, job["id"], 50)  # past two checkpoints
            first.signal(signal.SIGKILL)
            first.wait()
        finally:
            first.stop()
        second = LiveWorker(server, tmp_path / "w2").start()
        try:
            done = wait_for_job(client, job["id"], {"succeeded", "failed"})
        finally:
            second.stop()
        assert done["state"] == "succeeded", done["error"]
        assert done["attempt"] == 2
        lines = [e["data"].get("line", "") for e in
                 client.get(f"/jobs/{job['id']}/events", params={"limit": 1000}).json()["items"]]
        assert any("resuming from the checkpoint at step" in line for line in lines)
        assert _weights_sha(client, job["id"]) == _weights_sha(client, reference["id"])


def test_sigterm_hands_the_job_back_at_once(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    env = {"LORAPLANE_LEASE_SECONDS": "60"}  # a hand-back must not wait for the lease
    with LiveServer(tmp_path / "api", db, env=env) as server, server.client() as client:
        worker = LiveWorker(server, tmp_path / "w1").start()
        try:
            job = client.post("/jobs", json=_spec("handback")).json()
            running = _wait_step(client, job["id"], 30)
            worker.signal(signal.SIGTERM)
            assert worker.wait(60) == 0
        finally:
            worker.stop()
        back = client.get(f"/jobs/{job['id']}").json()
        assert back["state"] == "queued"
        assert back["attempt"] == 0  # a hand-back spends no attempt
        steps = [c["step"] for c in client.get(f"/jobs/{job['id']}/checkpoints").json()["items"]]
        assert max(steps) >= running["progress"]["step"]  # checkpointed where it stopped
        other = LiveWorker(server, tmp_path / "w2").start()
        try:
            done = wait_for_job(client, job["id"], {"succeeded", "failed"})
        finally:
            other.stop()
        assert done["state"] == "succeeded" and done["attempt"] == 1


def test_killing_the_api_loses_no_job(db_url: str, tmp_path: Path):
    spec = {**LONG, "runner": {"max_steps": 60, "save_interval": 20}}
    server = LiveServer(tmp_path / "api", db_url, env=SERVER_ENV).start()
    worker = LiveWorker(server, tmp_path / "w1").start()
    try:
        with server.client() as client:
            ids = [client.post("/jobs", json=spec).json()["id"] for _ in range(3)]
            _wait_step(client, ids[0], 10)
        server.kill()  # SIGKILL: one job running, two queued
        time.sleep(1.0)
        server.start()
        with server.client() as client:
            finished = [wait_for_job(client, i, {"succeeded", "failed"}) for i in ids]
    finally:
        worker.stop()
        server.stop()
        server.kill()
    assert [j["state"] for j in finished] == ["succeeded"] * 3, [j["error"] for j in finished]
