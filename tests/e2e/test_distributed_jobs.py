"""Real processes: a worker offering two CPU ranks runs a 2-device job through the server;
one rank SIGKILLed mid-run ends the attempt (no rank survives it) and the retry resumes from
the last checkpoint to `succeeded`; a cancel stops both ranks; SIGTERM hands the job back
after a checkpoint of both ranks' state, with no rank left."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.live import LiveServer, LiveWorker, wait_for_job

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

SERVER_ENV = {"LORAPLANE_LEASE_SECONDS": "3", "LORAPLANE_QUEUE_POLL_SECONDS": "0.1"}
TWO_RANKS = ["--cpu-ranks", "2", "--threads-per-rank", "1"]


def _spec(name: str, steps: int, save_interval: int) -> dict:
    return {
        "actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": True, "lora_rank": 4},
                  "optim": {"lr": 0.005}, "micro_batch_size": 4, "global_batch_size": 16},
        "runner": {"max_steps": steps, "save_interval": save_interval, "experiment_name": name},
        "cluster": {"num_nodes": 1, "component_placement": {"actor": "0-1"}},
    }


def _ranks(worker: LiveWorker, timeout: float = 60) -> list[psutil.Process]:
    """The worker's rank processes: the children of its forkserver."""
    assert worker.proc is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(worker.proc.pid).children():
            try:
                if "forkserver" in " ".join(child.cmdline()):
                    ranks = child.children()
                    if len(ranks) == 2:
                        return ranks
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.05)
    raise TimeoutError("the worker started no two rank processes")


def _wait_step(client: httpx.Client, job_id: str, step: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["progress"]["step"] >= step:
            return job
        assert job["state"] in ("queued", "running"), job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} did not reach step {step}")


def _gone(processes: list[psutil.Process], timeout: float = 10) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return alive


def _lines(client: httpx.Client, job_id: str) -> list[str]:
    events = client.get(f"/jobs/{job_id}/events", params={"limit": 1000}).json()["items"]
    return [e["data"].get("line", "") for e in events]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("distributed")
    db = f"sqlite:///{tmp / 'db.sqlite'}"
    with LiveServer(tmp / "api", db, env=SERVER_ENV) as server, server.client() as client:
        worker = LiveWorker(server, tmp / "w2", args=TWO_RANKS).start()
        try:
            yield client, worker, server
        finally:
            worker.stop()


def test_a_killed_rank_ends_the_attempt_and_the_retry_resumes_to_succeeded(live):
    client, worker, _ = live
    job = client.post("/jobs", json=_spec("killed-rank", steps=60, save_interval=5)).json()
    assert job["devices"] == 2
    ranks = _ranks(worker)
    _wait_step(client, job["id"], 7)  # past the checkpoint at step 5
    ranks[1].send_signal(signal.SIGKILL)
    assert not _gone(ranks), "a rank of the failed attempt survived it"
    done = wait_for_job(client, job["id"], {"succeeded", "failed"}, timeout=240)
    assert done["state"] == "succeeded", done["error"]
    assert done["attempt"] == 2
    lines = _lines(client, job["id"])
    events = client.get(f"/jobs/{job['id']}/events", params={"limit": 1000}).json()["items"]
    requeued = [e["data"] for e in events if e["kind"] == "state"
                and e["data"].get("from") == "running" and e["data"].get("to") == "queued"]
    assert requeued and requeued[0]["reason"] == "attempt 1 failed: system_error", requeued
    resumed = [line for line in lines if "resuming from the checkpoint at step" in line]
    assert resumed and int(resumed[-1].rsplit(" ", 1)[1]) >= 5
    assert any("training on 2 devices" in line for line in lines)
    adapter = client.get(f"/adapters/{done['adapter_id']}").json()
    assert sorted(f["name"] for f in adapter["files"]) == [
        "adapter_config.json", "adapter_model.safetensors"]


def test_cancel_of_a_two_rank_job_stops_both_ranks(live):
    client, worker, _ = live
    job = client.post("/jobs", json=_spec("cancelled", steps=2000, save_interval=-1)).json()
    ranks = _ranks(worker)
    _wait_step(client, job["id"], 3)
    assert client.post(f"/jobs/{job['id']}/cancel").status_code in (200, 202)
    done = wait_for_job(client, job["id"], {"cancelled"}, timeout=60)
    assert not _gone(ranks), "a rank kept running after the cancel"
    assert done["progress"]["step"] < 2000
    assert any(line.startswith("cancelled after step") for line in _lines(client, job["id"]))


def test_sigterm_hands_a_two_rank_job_back_and_a_killed_worker_leaves_no_rank(
    live, tmp_path: Path
):
    """SIGTERM: the job goes back after a checkpoint of both ranks' state, no attempt spent, no
    rank left (the module's worker exits: this test runs last). A new worker resumes it from
    that checkpoint; SIGKILL of that worker ends both ranks too (their watchdog)."""
    client, worker, server = live
    job = client.post("/jobs", json=_spec("handed-back", steps=2000, save_interval=-1)).json()
    ranks = _ranks(worker)
    running = _wait_step(client, job["id"], 3)
    worker.signal(signal.SIGTERM)
    assert worker.wait(60) == 0
    assert not _gone(ranks), "a rank kept running after the hand-back"
    back = client.get(f"/jobs/{job['id']}").json()
    assert back["state"] == "queued" and back["attempt"] == 0, back  # no attempt spent
    assert any(line.startswith("handed back after step") for line in _lines(client, job["id"]))
    steps = [c["step"] for c in client.get(f"/jobs/{job['id']}/checkpoints").json()["items"]]
    assert steps and max(steps) >= running["progress"]["step"]  # checkpointed where it stopped

    second = LiveWorker(server, tmp_path / "w3", args=TWO_RANKS).start()
    try:
        ranks = _ranks(second)
        _wait_step(client, job["id"], back["progress"]["step"] + 2)
        tree = psutil.Process(second.proc.pid).children(recursive=True)
        second.signal(signal.SIGKILL)
        second.wait(30)
        assert not _gone(ranks, timeout=15), "a rank outlived its worker"
        assert not _gone(tree, timeout=15), "a process of the worker outlived it"
    finally:
        second.stop()
    lines = _lines(client, job["id"])
    assert any("resuming from the checkpoint at step" in line for line in lines)
