"""`GET /jobs` with `Accept: text/event-stream`: the list page, then each change to it (`job`)
and each job that left it (`gone`), on both engines, over a real uvicorn on a loopback port
(the stream never ends by itself, so the client reads part of it and hangs up)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from service.settings import Settings
from tests.specs import tiny_spec


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    from api.app import create_app

    settings = settings.model_copy(update={"queue_poll_seconds": 0.05})
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    token = (settings.data_dir / "admin.token").read_text().strip()
    try:
        with httpx.Client(base_url=url, timeout=10,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class Events:
    """The messages of one SSE response, read as they come."""

    def __init__(self, response: httpx.Response):
        self.lines = response.iter_lines()

    def next(self) -> tuple[str, dict]:
        event, data = "message", []
        for line in self.lines:
            if not line:
                if data:
                    return event, json.loads("\n".join(data))
                continue
            field, _, value = line.partition(": ")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
        raise AssertionError("the stream ended")

    def until(self, predicate, limit: int = 50) -> tuple[str, dict]:
        for _ in range(limit):
            event, data = self.next()
            if predicate(event, data):
                return event, data
        raise AssertionError(f"no such event in {limit} messages")


def test_the_list_stream_sends_the_page_then_its_changes(api: httpx.Client):
    before = api.post("/jobs", json=tiny_spec("before")).json()
    with api.stream("GET", "/jobs", headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = Events(response)
        # The job as GET /jobs/{id} shows it, exactly.
        assert events.next() == ("job", api.get(f"/jobs/{before['id']}").json())
        after = api.post("/jobs", json=tiny_spec("after")).json()
        event, data = events.next()
        assert (event, data["id"], data["state"]) == ("job", after["id"], "queued")
        api.post(f"/jobs/{after['id']}/cancel")
        event, data = events.next()
        assert (event, data["id"], data["state"]) == ("job", after["id"], "cancelled")


def test_a_job_that_leaves_the_filter_is_gone(api: httpx.Client):
    job = api.post("/jobs", json=tiny_spec("leaves")).json()
    with api.stream("GET", "/jobs", params={"state": "queued"},
                    headers={"Accept": "text/event-stream"}) as response:
        events = Events(response)
        assert events.next()[1]["id"] == job["id"]
        api.post(f"/jobs/{job['id']}/cancel")
        assert events.next() == ("gone", {"id": job["id"]})


def test_the_list_stream_is_refused_without_a_token(api: httpx.Client):
    response = api.get("/jobs", headers={"Accept": "text/event-stream", "Authorization": ""})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
