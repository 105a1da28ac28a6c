"""Two API processes on one PostgreSQL, three workers between them: nothing lost, nothing
run twice, every adapter downloadable from either API — with the artifacts on one shared
folder, and in one bucket of an S3-compatible server (docs/architecture.md: the API is
stateless; claims and registration are safe together)."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.live import LiveServer, LiveWorker
from tests.s3 import artifacts_url, s3_endpoint  # noqa: F401  (fixtures: both stores)

pytestmark = pytest.mark.slow

SPEC = {
    "actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": True, "lora_rank": 2},
              "micro_batch_size": 4, "global_batch_size": 4},
    "runner": {"max_steps": 2, "save_interval": -1, "experiment_name": "scale"},
}


def test_two_apis_three_workers_thirty_jobs(pg_database: str, artifacts_url: str | None,  # noqa: F811
                                            tmp_path: Path):
    from tests.conftest import _truncate

    _truncate(pg_database)
    shared = tmp_path / "shared"  # one artifacts folder, as a shared volume would be
    env = {"LORAPLANE_ARTIFACTS_DIR": str(shared / "artifacts"),
           "LORAPLANE_QUEUE_POLL_SECONDS": "0.2"}
    if artifacts_url:  # or one bucket (the AWS_* settings point at the test server)
        env["LORAPLANE_ARTIFACTS_URL"] = artifacts_url
    first = LiveServer(tmp_path / "api1", pg_database, env=env)
    second = LiveServer(tmp_path / "api2", pg_database, env=dict(env))
    workers: list[LiveWorker] = []
    try:
        first.start()
        second.env.update(LORAPLANE_ADMIN_TOKEN=first.admin_token,
                          LORAPLANE_WORKER_TOKEN=first.worker_token)
        second.start()
        workers = [LiveWorker(first, tmp_path / "w1").start(),
                   LiveWorker(first, tmp_path / "w2").start(),
                   LiveWorker(second, tmp_path / "w3").start()]
        apis = [first.client(), second.client()]
        ids = [apis[n % 2].post("/jobs", json=SPEC).json()["id"] for n in range(30)]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            states = Counter(apis[0].get(f"/jobs/{i}").json()["state"] for i in ids)
            if states["succeeded"] + states["failed"] == 30:
                break
            time.sleep(0.5)
        jobs = [apis[1].get(f"/jobs/{i}").json() for i in ids]
        assert [j["state"] for j in jobs] == ["succeeded"] * 30, [j["error"] for j in jobs]
        for job in jobs:
            events = apis[0].get(f"/jobs/{job['id']}/events", params={"limit": 1000}).json()
            starts = [e for e in events["items"] if e["kind"] == "state"
                      and e["data"]["to"] == "running"]
            assert len(starts) == 1, f"{job['id']} ran {len(starts)} times"
            assert job["attempt"] == 1
        versions = sorted(apis[0].get(f"/adapters/{j['adapter_id']}").json()["version"]
                          for j in jobs)
        assert versions == list(range(1, 31))  # one registration each, none twice
        by_worker = Counter(j["worker_id"] for j in jobs)
        assert by_worker.get(None) is None and len(by_worker) >= 2, by_worker
        for n, job in enumerate(jobs):  # each adapter's bytes, from the other API than its submit's
            adapter = apis[n % 2].get(f"/adapters/{job['adapter_id']}").json()
            for file in adapter["files"]:
                body = apis[(n + 1) % 2].get(f"/adapters/{adapter['id']}/files/{file['name']}")
                assert hashlib.sha256(body.content).hexdigest() == file["sha256"]
    finally:
        for worker in workers:
            worker.stop()
        for server in (second, first):
            server.stop()
            server.kill()
