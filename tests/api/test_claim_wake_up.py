"""Long-polling claims are woken one per new job: the one waiting longest that the job fits.

The database poll behind the wake-up is set to 60 s here, so a claim that returns within the
test's few seconds was woken, not polled.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from api.deps import AppState, WorkSignal
from service.settings import Settings
from tests.specs import model_spec


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url, lease_seconds=30,
                    queue_poll_seconds=60, claim_wait_seconds=60)


class Claims:
    """Long-polling claims, each in a thread of its own; what each got, in arrival order."""

    def __init__(self, client: TestClient):
        self.client = client
        self.answers: dict[str, tuple[int, str | None]] = {}
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def start(self, name: str, devices: int = 1, wait: float = 20) -> None:
        def run() -> None:
            r = self.client.post("/worker/claim", json={"worker_id": name, "devices": devices,
                                                        "wait_seconds": wait})
            with self.lock:
                self.answers[name] = (r.status_code,
                                      r.json()["job"]["id"] if r.status_code == 200 else None)

        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)
        time.sleep(0.5)  # waiting (in the signal's list) before the next one starts

    def wait_for(self, count: int, timeout: float = 10) -> dict[str, tuple[int, str | None]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.answers) >= count:
                    return dict(self.answers)
            time.sleep(0.05)
        return dict(self.answers)


def test_one_submit_wakes_one_claim_the_oldest(client: TestClient, state: AppState):
    claims = Claims(client)
    for name in ("first", "second", "third"):
        claims.start(name, wait=8)
    claim_statements: list[str] = []

    def on_statement(_conn, _cursor, statement, *_args) -> None:
        # The claim: its own statement on SQLite, the first CTE of one on PostgreSQL.
        if statement.startswith(("UPDATE jobs SET state", "WITH claimed AS")):
            claim_statements.append(statement)

    event.listen(state.engine, "before_cursor_execute", on_statement)
    try:
        job = client.post("/jobs", json=model_spec()).json()
        assert claims.wait_for(1) == {"first": (200, job["id"])}
        time.sleep(1.0)
    finally:
        event.remove(state.engine, "before_cursor_execute", on_statement)
    assert len(claims.answers) == 1, claims.answers  # the others still wait...
    assert len(claim_statements) == 1, claim_statements  # ...without a claim of their own

    other = client.post("/jobs", json=model_spec()).json()
    assert claims.wait_for(2)["second"] == (200, other["id"])
    for thread in claims.threads:
        thread.join(15)
    assert claims.answers["third"] == (204, None)  # its whole wait out: nothing for it


def test_a_job_on_two_devices_wakes_the_claim_that_offers_two(client: TestClient):
    claims = Claims(client)
    claims.start("one-device", devices=1, wait=4)
    claims.start("two-devices", devices=2, wait=8)
    spec = {**model_spec(), "cluster": {"num_nodes": 1, "component_placement": {"actor": "0-1"}}}
    job = client.post("/jobs", json=spec).json()
    assert job["devices"] == 2
    assert claims.wait_for(1) == {"two-devices": (200, job["id"])}
    for thread in claims.threads:
        thread.join(15)
    assert claims.answers["one-device"] == (204, None)


def test_signal_wakes_the_oldest_fitting_waiter_or_all():
    async def scenario() -> list[str]:
        signal, woken = WorkSignal(), []

        async def waiter(name: str, devices: int) -> None:
            await signal.wait(5, devices=devices)
            woken.append(name)

        tasks = [asyncio.create_task(waiter(name, devices))
                 for name, devices in (("a", 1), ("b", 4), ("c", 1), ("d", 1))]
        await asyncio.sleep(0.05)
        signal.notify(devices=2)  # a and c offer too few
        await asyncio.sleep(0.05)
        signal.notify()
        await asyncio.sleep(0.05)
        assert woken == ["b", "a"]
        signal.notify_all()
        await asyncio.gather(*tasks)
        signal.notify()  # nobody waits: nothing happens, nothing is kept for later
        return woken

    woken = asyncio.run(scenario())
    assert woken[:2] == ["b", "a"] and sorted(woken[2:]) == ["c", "d"]
