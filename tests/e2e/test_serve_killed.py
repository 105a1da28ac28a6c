"""`loraplane serve` SIGKILLed: its local workers do not outlive it (cli/parent.py).

A worker that trains when `serve` dies hands its job back (to the `serve` restarted on the
same port, within its retry window) and exits; an idle one exits at once. Neither goes on
polling beside the fresh set of workers the restarted `serve` starts. Under
`--api-processes 2` the API processes stop as well, and the port is free again.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from tests.live import LiveServer, api_processes, local_workers, wait_for_job, wait_until

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
        # Killed while its worker has no job (no job was ever submitted): it exits at once.
        with server:
            orphans = wait_until(lambda: local_workers(server), 60, "the local worker")
            _kill_serve_only(server)
            wait_until(lambda: _gone(orphans[0]), 15, "the idle orphaned worker to exit")

        with server, server.client() as client:  # started again
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
    finally:
        for proc in orphans:  # the fix failing must not leave a process polling forever
            if not _gone(proc):
                proc.kill()


def test_api_processes_and_the_worker_stop_when_serve_is_sigkilled(
        pg_database: str, tmp_path: Path):
    from tests.conftest import _truncate

    _truncate(pg_database)
    server = LiveServer(tmp_path / "data", pg_database, workers=1,
                        env={"LORAPLANE_API_PROCESSES": "2"})
    orphans: list[psutil.Process] = []
    try:
        with server:
            apis = wait_until(lambda: len(api_processes(server)) == 2 and api_processes(server),
                              60, "two API processes")
            workers = wait_until(lambda: local_workers(server), 60, "the local worker")
            orphans = [*apis, *workers]
            _kill_serve_only(server)
            wait_until(lambda: all(_gone(p) for p in orphans), 30,
                       "the API processes and the worker to exit")
            server.start()  # the port is free: nothing of the killed `serve` holds it
    finally:
        for proc in orphans:
            if not _gone(proc):
                proc.kill()
