"""`loraplane serve --api-processes 2`: two API processes on one port, one local worker.

Both processes answer (the kernel spreads connections between them) and /metrics, whichever
answers, counts the requests of both; a job trains through them; an API process SIGKILLed is
replaced while the other serves; SIGTERM stops the worker first (its job handed back through
the still-running API processes), then them, and leaves no process behind.
"""

from __future__ import annotations

import hashlib
import re
import signal
from pathlib import Path

import httpx
import psutil
import pytest

from tests.live import LiveServer, api_processes, local_workers, wait_for_job, wait_until

pytestmark = pytest.mark.slow

QUICK = {"actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": True, "lora_rank": 2}},
         "runner": {"max_steps": 2, "save_interval": -1}}
LONG = {"actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": True, "lora_rank": 2}},
        "runner": {"max_steps": 100000, "save_interval": 20}}


def _requests_counted(client: httpx.Client, route: str) -> float:
    text = client.get("/metrics").text
    return sum(float(m.group(1)) for m in re.finditer(
        rf'^loraplane_http_requests_total{{method="GET",route="{re.escape(route)}",'
        rf'status="200"}} (\S+)$', text, re.MULTILINE))


def test_two_api_processes_share_the_port_the_metrics_and_the_shutdown(
        pg_database: str, tmp_path: Path):
    from tests.conftest import _truncate

    _truncate(pg_database)
    server = LiveServer(tmp_path / "api", pg_database, workers=1,
                        env={"LORAPLANE_API_PROCESSES": "2", "LORAPLANE_QUEUE_POLL_SECONDS": "0.2"})
    with server:
        apis = wait_until(lambda: len(api_processes(server)) == 2 and api_processes(server), 60,
                          "two API processes")
        # The local worker starts once an API process answers /healthz, a moment after
        # the API processes themselves: wait for it, then count exactly one.
        wait_until(lambda: local_workers(server), 60, "the local worker")
        workers = local_workers(server)
        assert len(workers) == 1, [p.cmdline() for p in workers]
        tree = [server.proc.pid, *(p.pid for p in apis), workers[0].pid]

        # Fresh connections, spread by the kernel: each process counts what it answered in
        # files of its own, and a scrape adds up all of them.
        headers = {"Authorization": f"Bearer {server.admin_token}", "Connection": "close"}
        for _ in range(40):
            assert httpx.get(f"{server.url}/jobs", headers=headers).status_code == 200
        metrics_dir = server.data_dir / "metrics"
        writers = {int(m.group(1)) for f in metrics_dir.iterdir()
                   if (m := re.match(r"counter_(\d+)\.db$", f.name))}
        assert writers == {p.pid for p in apis}, (writers, [p.pid for p in apis])
        with server.client() as client:
            assert _requests_counted(client, "/jobs") == 40

            job = client.post("/jobs", json=QUICK).json()
            done = wait_for_job(client, job["id"], {"succeeded", "failed"})
            assert done["state"] == "succeeded", done["error"]
            files = client.get(f"/adapters/{done['adapter_id']}").json()["files"]
            for f in files:
                body = httpx.get(f"{server.url}/adapters/{done['adapter_id']}/files/{f['name']}",
                                 headers=headers).content
                assert hashlib.sha256(body).hexdigest() == f["sha256"]

            # One API process SIGKILLed: the other answers meanwhile; a new one takes its place.
            apis[0].kill()
            for _ in range(10):
                assert httpx.get(f"{server.url}/healthz", headers=headers).status_code == 200
            replaced = wait_until(lambda: (now := api_processes(server)) and len(now) == 2
                                  and apis[0].pid not in {p.pid for p in now} and now, 60,
                                  "a replacement API process")
            tree += [p.pid for p in replaced]

            # SIGTERM while the worker trains: it hands the job back through the API
            # processes, which stop only after it.
            long = client.post("/jobs", json=LONG).json()
            wait_until(lambda: client.get(f"/jobs/{long['id']}").json()["progress"]["step"] >= 5,
                       120, "the long job to train")
        assert server.stop(signal.SIGTERM, timeout=120) == 0
    alive = [pid for pid in tree if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not alive, alive

    restarted = LiveServer(tmp_path / "api", pg_database, env={"LORAPLANE_API_PROCESSES": "2"})
    with restarted, restarted.client() as client:
        job = client.get(f"/jobs/{long['id']}").json()
        # Handed back (no attempt spent), not left running until its lease expired.
        assert job["state"] == "queued" and job["attempt"] == 0, job
        events = client.get(f"/jobs/{long['id']}/events", params={"limit": 1000}).json()["items"]
        requeued = [e["data"] for e in events
                    if e["kind"] == "state" and e["data"].get("to") == "queued"
                    and e["data"].get("from") == "running"]
        assert len(requeued) == 1 and "expired" not in requeued[0]["reason"], events
