"""`loraplane serve` SIGKILLed: its local workers do not outlive it (cli/parent.py).

A worker that trains when `serve` dies hands its job back (to the `serve` restarted on the
same port, within its retry window) and exits; an idle one exits at once. Neither goes on
polling beside the fresh set of workers the restarted `serve` starts.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from tests.live import LiveServer, local_workers, wait_for_job, wait_until

pytestmark = pytest.mark.slow

SPEC = {"actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": True, "lora_rank": 2}},
        "runner": {"max_steps": 400, "save_interval": 20}}


def _kill_serve_only(server: LiveServer) -> None:
    """SIGKILL the `serve` process alone, not its process group: its children live on."""
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait()


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_local_workers_stop_when_serve_is_sigkilled(db_url: str, tmp_path: Path):
    server = LiveServer(tmp_path / "data", db_url, workers=1)
    orphans: list[psutil.Process] = []
    try:
        with server, server.client() as client:
            job = client.post("/jobs", json=SPEC).json()
            wait_until(lambda: client.get(f"/jobs/{job['id']}").json()["progress"]["step"] >= 3,
                       120, "the job to train")
            orphans = local_workers(server)
            assert len(orphans) == 1, orphans

            # Killed while its worker trains; started again on the same port at once.
            _kill_serve_only(server)
            server.start()
            wait_until(lambda: _gone(orphans[0]), 90, "the orphaned worker to exit")
            done = wait_for_job(client, job["id"], {"succeeded", "failed"})
            assert done["state"] == "succeeded", done
            events = client.get(f"/jobs/{job['id']}/events",
                                params={"limit": 1000}).json()["items"]
            requeued = [e["data"] for e in events if e["kind"] == "state"
                        and e["data"].get("from") == "running" and e["data"].get("to") == "queued"]
            # Handed back by the orphan (no attempt spent), not left to its lease's expiry.
            assert len(requeued) == 1 and "expired" not in requeued[0]["reason"], requeued
            assert done["attempt"] == 1, done  # the hand-back gave its attempt back

            # Killed while its worker waits for work: the worker exits at once.
            orphans = local_workers(server)
            assert len(orphans) == 1, orphans
            _kill_serve_only(server)
            wait_until(lambda: _gone(orphans[0]), 15, "the idle orphaned worker to exit")
    finally:
        for proc in orphans:  # the fix failing must not leave a process polling forever
            if not _gone(proc):
                proc.kill()
