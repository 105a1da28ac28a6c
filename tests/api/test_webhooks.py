"""Webhooks against a real receiver on a loopback port, on SQLite and PostgreSQL: a job's end
delivers one signed `job.succeeded` (checked with the specification's algorithm written out
in tests/receiver.py); a receiver that is down, then failing, then up gets the message with
the same `webhook-id`; adapters registered and aliases moved are told; deliveries and their
attempts are listed; redelivery; the allow-list at creation and at delivery; isolation
between projects. A SIGKILLed API: tests/e2e/test_webhook_delivery.py."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db import models
from db.base import utcnow
from db.engine import make_engine, make_sessionmaker
from service.schemas.webhooks import WebhookEvent
from service.settings import Settings
from service.webhooks import enqueue, new_secret, redeliver
from service.webhooks.delivery import Due, Outcome, attempt, claim_due, http_client, record_outcome
from service.webhooks.targets import AllowList, parse_target, pick_address
from tests.conftest import authenticate_as_admin
from tests.factories import as_caller, assert_problem, lora_result, make_adapter, make_token
from tests.live import free_port
from tests.receiver import Receiver, verify_standard_webhook, wait_until
from tests.specs import model_spec

SPEC = model_spec()


@pytest.fixture
def hooked(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app with loopback allowed as a webhook target and retries a few tenths apart."""
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url,
                        webhook_allowed_hosts=["127.0.0.1/32"], webhook_poll_seconds=0.05,
                        webhook_retry_base_seconds=0.1, webhook_retry_max_seconds=0.3,
                        webhook_timeout_seconds=2)
    from api.app import create_app

    with TestClient(create_app(settings)) as client:
        authenticate_as_admin(client, settings)
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def settle() -> None:
    """Long enough for several rounds of the delivery loop (a duplicate would show)."""
    time.sleep(0.4)


def subscribe(client: TestClient, url: str, *events: str) -> dict:
    made = client.post("/webhooks", json={"url": url, "events": list(events)})
    assert made.status_code == 201, made.text
    return made.json()


def deliveries(client: TestClient, webhook_id: str) -> list[dict]:
    listed = client.get(f"/webhooks/{webhook_id}/deliveries")
    assert listed.status_code == 200, listed.text
    return listed.json()["items"]


def finish_a_job(client: TestClient) -> dict:
    """A job submitted, claimed and completed through the worker protocol: the job."""
    job = client.post("/jobs", json=SPEC).json()
    lease = client.post("/worker/claim", json={"worker_id": "w"}).json()
    assert lease["job"]["id"] == job["id"]
    result = lora_result(client.app.state.loraplane.store, rank=4)
    done = client.post(f"/worker/jobs/{job['id']}/complete",
                       headers={"X-Loraplane-Lease": lease["lease_id"]},
                       json=result.model_dump(mode="json"))
    assert done.status_code == 200, done.text
    return done.json()


def test_a_job_that_succeeds_delivers_one_signed_message(hooked: TestClient, receiver: Receiver):
    hook = subscribe(hooked, receiver.url, "job.succeeded", "job.failed")
    assert hook["secret"].startswith("whsec_")
    assert 24 <= len(base64.b64decode(hook["secret"].removeprefix("whsec_"))) <= 32
    assert hook["events"] == ["job.succeeded", "job.failed"]
    shown = [hooked.get(f"/webhooks/{hook['id']}").json(), hooked.get("/webhooks").json()]
    assert "secret" not in shown[0] and "secret" not in shown[1]["items"][0]
    assert "whsec_" not in json.dumps(shown)

    job = finish_a_job(hooked)

    wait_until(lambda: receiver.requests, what="the job.succeeded message")
    [(headers, body)] = receiver.requests
    verify_standard_webhook(hook["secret"], headers, body)
    message = json.loads(body)
    assert message["type"] == "job.succeeded"
    assert message["data"]["id"] == job["id"] and message["data"]["state"] == "succeeded"
    assert message["data"]["adapter_id"] == job["adapter_id"]
    assert message["timestamp"].endswith("Z")

    [delivery] = wait_until(lambda: [d for d in deliveries(hooked, hook["id"])
                                     if d["state"] == "delivered"])
    assert delivery["id"] == headers["webhook-id"] and delivery["attempts"] == 1
    assert delivery["payload"] == message and delivery["next_attempt_at"] is None
    [tried] = delivery["attempt_log"]
    assert tried["status_code"] == 200 and tried["error"] is None and tried["duration_ms"] >= 0
    # Exactly one: nothing is sent again once delivered.
    settle()
    assert len(receiver.requests) == 1


def test_receiver_down_then_failing_then_up_gets_it_with_the_same_webhook_id(hooked: TestClient):
    port = free_port()  # nothing listens there yet
    hook = subscribe(hooked, f"http://127.0.0.1:{port}/hooks", "job.cancelled")
    job = hooked.post("/jobs", json=SPEC).json()
    assert hooked.post(f"/jobs/{job['id']}/cancel").json()["state"] == "cancelled"

    wait_until(lambda: [d for d in deliveries(hooked, hook["id"]) if d["attempts"] >= 2],
               what="two failed attempts")
    with Receiver(port=port, statuses=(503,)) as receiver:
        [delivery] = wait_until(lambda: [d for d in deliveries(hooked, hook["id"])
                                         if d["state"] == "delivered"], what="delivery")
    log = delivery["attempt_log"]
    assert [a["attempt"] for a in log] == list(range(1, len(log) + 1))
    assert all(a["status_code"] is None and a["error"] for a in log[:-2])
    assert (log[-2]["status_code"], log[-1]["status_code"]) == (503, 200)
    assert "503" in log[-2]["error"] and log[-1]["error"] is None
    assert len(receiver.requests) == 2
    assert {h["webhook-id"] for h, _ in receiver.requests} == {delivery["id"]}
    for headers, body in receiver.requests:
        verify_standard_webhook(hook["secret"], headers, body)
        assert json.loads(body)["data"]["id"] == job["id"]
        assert json.loads(body)["type"] == "job.cancelled"


def test_adapter_registered_and_alias_moved_are_told(hooked: TestClient, receiver: Receiver):
    hook = subscribe(hooked, receiver.url, "adapter.registered", "alias.moved")
    state = hooked.app.state.loraplane
    first = make_adapter(state, name="bot", rank=4)
    second = make_adapter(state, name="bot", rank=4, seed=1)
    for target in (first, first, second):  # pointing it where it points is no move
        assert hooked.put("/aliases/bot/prod", json={"adapter_id": target.id}).status_code == 200

    wait_until(lambda: len(receiver.requests) >= 4, what="four messages")
    settle()
    for headers, body in receiver.requests:
        verify_standard_webhook(hook["secret"], headers, body)
    messages = receiver.messages()
    registered = [m["data"] for m in messages if m["type"] == "adapter.registered"]
    moved = [m["data"] for m in messages if m["type"] == "alias.moved"]
    assert sorted((a["id"], a["name"], a["version"]) for a in registered) == [
        (first.id, "bot", 1), (second.id, "bot", 2)]
    # Messages of one round are sent side by side: in no promised order.
    assert sorted((m["version"], m["alias"], m["adapter_id"], m["previous_adapter_id"])
                  for m in moved) == [(1, "prod", first.id, None), (2, "prod", second.id, first.id)]
    assert len(messages) == 4


def test_redeliver_sends_the_same_message_again(hooked: TestClient, receiver: Receiver):
    hook = subscribe(hooked, receiver.url, "job.cancelled")
    job = hooked.post("/jobs", json=SPEC).json()
    hooked.post(f"/jobs/{job['id']}/cancel")
    [delivery] = wait_until(lambda: [d for d in deliveries(hooked, hook["id"])
                                     if d["state"] == "delivered"])
    again = hooked.post(f"/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver")
    assert again.status_code == 202 and again.json()["state"] == "pending"
    wait_until(lambda: len(receiver.requests) == 2, what="the redelivery")
    (first_headers, first_body), (headers, body) = receiver.requests
    assert headers["webhook-id"] == first_headers["webhook-id"] == delivery["id"]
    assert body == first_body
    verify_standard_webhook(hook["secret"], headers, body)
    done = wait_until(lambda: (d := hooked.get(
        f"/webhooks/{hook['id']}/deliveries/{delivery['id']}").json())["state"] == "delivered"
        and len(d["attempt_log"]) == 2 and d)
    assert [a["status_code"] for a in done["attempt_log"]] == [200, 200]
    missing = hooked.post(f"/webhooks/{hook['id']}/deliveries/msg_nope/redeliver")
    assert_problem(missing, 404, "not_found")


def test_urls_outside_the_allow_list_are_refused_at_creation(hooked: TestClient):
    for url, code in [
        ("http://10.0.0.7/hooks", "webhook_url_not_allowed"),
        ("http://127.0.0.2:8080/", "webhook_url_not_allowed"),
        ("http://[::1]:8080/", "webhook_url_not_allowed"),
        ("http://unlisted.invalid/hooks", "webhook_url_not_allowed"),
        ("ftp://127.0.0.1/hooks", "invalid_webhook_url"),
        ("file:///etc/passwd", "invalid_webhook_url"),
        ("http://user:pw@127.0.0.1/hooks", "invalid_webhook_url"),
        ("not a url", "invalid_webhook_url"),
    ]:
        refused = hooked.post("/webhooks", json={"url": url, "events": ["job.failed"]})
        body = assert_problem(refused, 422, code)
        assert "LORAPLANE_WEBHOOK_ALLOWED_HOSTS" in body["detail"] or code != \
            "webhook_url_not_allowed", body
    unknown_event = hooked.post("/webhooks", json={"url": "http://127.0.0.1/",
                                                   "events": ["job.started"]})
    assert_problem(unknown_event, 422, "invalid_request")
    assert hooked.get("/webhooks").json()["items"] == []


def test_the_allow_list_admits_only_what_it_names():
    assert AllowList.parse([]).empty
    loopback = AllowList.parse(["127.0.0.1/32"])
    named = AllowList.parse(["hooks.example.com", "*.corp.example"])
    hooks = parse_target("https://hooks.example.com/in")
    public, private, local = (ipaddress.ip_address(a)
                              for a in ("93.184.216.34", "10.1.2.3", "127.0.0.1"))
    # A listed name may resolve to public addresses only (DNS rebinding to 127.0.0.1: refused).
    assert pick_address(named, hooks, [public]) == public
    assert pick_address(named, hooks, [local, private]) is None
    assert pick_address(named, parse_target("http://a.corp.example/"), [public]) == public
    assert pick_address(named, parse_target("http://corp.example.evil/"), [public]) is None
    # Loopback only when a listed CIDR holds it; the IPv4-mapped form is the same address.
    assert pick_address(loopback, parse_target("http://127.0.0.1:9/"), [local]) == local
    assert pick_address(loopback, parse_target("http://[::ffff:127.0.0.1]:9/"),
                        [ipaddress.ip_address("::ffff:127.0.0.1")]) == local
    assert pick_address(loopback, hooks, [public]) is None
    with pytest.raises(ValueError, match="neither a host name"):
        AllowList.parse(["http://x/"])


def test_the_address_is_checked_again_at_delivery(receiver: Receiver):
    """`localhost` listed by name resolves to loopback: refused when sent, the receiver
    untouched; with its CIDR listed, the same URL is delivered to the checked address."""
    due = Due(id="msg_x", webhook_id="wh_x", url=f"http://localhost:{receiver.port}/hooks",
              secret="whsec_" + base64.b64encode(b"k" * 24).decode(), body='{"a":1}', attempt=1)
    settings = Settings(webhook_timeout_seconds=2)

    async def send(allow: AllowList):
        async with http_client(settings) as client:
            return await attempt(client, allow, due, 2.0)

    refused = asyncio.run(send(AllowList.parse(["localhost"])))
    assert not refused.delivered and "refused" in refused.error and refused.status_code is None
    assert receiver.requests == []
    sent = asyncio.run(send(AllowList.parse(["127.0.0.1/32"])))
    assert sent.delivered and sent.status_code == 200
    [(headers, body)] = receiver.requests
    assert headers["host"] == f"localhost:{receiver.port}" and body == b'{"a":1}'
    verify_standard_webhook(due.secret, headers, body)


def test_a_project_sees_and_is_told_only_of_its_own(hooked: TestClient, receiver: Receiver):
    _, blue_token = make_token(hooked, "user", project="blue")
    blue = as_caller(hooked, blue_token)
    _, green_token = make_token(hooked, "user", project="green")
    green = as_caller(hooked, green_token)
    blue_hook = subscribe(blue, receiver.url, "job.cancelled")
    assert blue_hook["project"] == "blue"
    assert green.get("/webhooks").json()["items"] == []
    assert hooked.get("/webhooks").json()["items"] == []  # the admin acts in `default`
    for path in (f"/webhooks/{blue_hook['id']}", f"/webhooks/{blue_hook['id']}/deliveries"):
        assert_problem(green.get(path), 404, "not_found")
    assert_problem(green.delete(f"/webhooks/{blue_hook['id']}"), 404, "not_found")
    seen = hooked.get(f"/webhooks/{blue_hook['id']}",
                      headers={"X-Loraplane-Project": "blue"})
    assert seen.status_code == 200  # an admin may act in the project by header

    green_job = green.post("/jobs", json=SPEC).json()
    green.post(f"/jobs/{green_job['id']}/cancel")
    blue_job = blue.post("/jobs", json=SPEC).json()
    blue.post(f"/jobs/{blue_job['id']}/cancel")
    wait_until(lambda: receiver.requests, what="blue's message")
    settle()
    assert [m["data"]["id"] for m in receiver.messages()] == [blue_job["id"]]

    assert blue.delete(f"/webhooks/{blue_hook['id']}").status_code == 204
    assert_problem(blue.get(f"/webhooks/{blue_hook['id']}/deliveries"), 404, "not_found")


def test_only_a_final_failure_is_told(hooked: TestClient, receiver: Receiver):
    """A retryable failure with attempts left sends the job back to the queue (no message);
    a user error fails it (job.failed, with its error)."""
    subscribe(hooked, receiver.url, "job.failed")

    def claim_and_fail(code: str, retryable: bool) -> dict:
        lease = hooked.post("/worker/claim", json={"worker_id": "w"}).json()
        return hooked.post(f"/worker/jobs/{lease['job']['id']}/fail",
                           headers={"X-Loraplane-Lease": lease["lease_id"]},
                           json={"code": code, "message": "m", "retryable": retryable}).json()

    hooked.post("/jobs", json=SPEC)
    assert claim_and_fail("out_of_memory", True)["state"] == "queued"
    failed = claim_and_fail("no_matching_modules", False)
    assert failed["state"] == "failed"
    wait_until(lambda: receiver.requests, what="job.failed")
    settle()
    [message] = receiver.messages()
    assert message["type"] == "job.failed" and message["data"]["id"] == failed["id"]
    assert message["data"]["error"]["code"] == "no_matching_modules"


# ---------------------------------------------------------------------------- the outbox itself


@pytest.fixture
def outbox(db_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on a migrated database with one subscription, and no delivery loop running."""
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        session.add(models.Webhook(id="wh_1", url="http://127.0.0.1:9/", events=["job.failed"],
                                   secret=new_secret(), project="default", created_at=utcnow()))
        session.commit()
    yield sessions
    engine.dispose()


def test_concurrent_claims_take_each_message_once(outbox: sessionmaker[Session]):
    """Four replicas claiming 40 due messages a few at a time: each is claimed exactly once."""
    with outbox() as session:
        for i in range(40):
            enqueue(session, project="default", event=WebhookEvent.job_failed,
                    data=lambda i=i: {"i": i})
        enqueue(session, project="other", event=WebhookEvent.job_failed, data=dict)
        session.commit()
    claimed: list[str] = []
    barrier = threading.Barrier(4)

    def replica() -> None:
        barrier.wait()
        while True:
            with outbox() as session:
                dues = claim_due(session, lease_seconds=60, limit=3)
                session.commit()
            if not dues:
                return
            claimed.extend(d.id for d in dues)

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(claimed) == 40 and len(set(claimed)) == 40
    with outbox() as session:
        assert claim_due(session, lease_seconds=60) == []  # all leased, none due
        bodies = session.scalars(select(models.WebhookDelivery.body)).all()
    assert sorted(json.loads(b)["data"]["i"] for b in bodies) == list(range(40))


def test_a_message_is_given_up_after_its_max_age_and_can_be_sent_again(
        outbox: sessionmaker[Session]):
    settings = Settings(webhook_max_age_seconds=0.5, webhook_retry_base_seconds=0.01)
    failure = Outcome(started_at=utcnow(), duration_ms=1.0, status_code=500,
                      error="the receiver answered HTTP 500", excerpt=None)
    with outbox() as session:
        enqueue(session, project="default", event=WebhookEvent.job_failed, data=dict)
        session.commit()
        [due] = claim_due(session, lease_seconds=0)
        assert record_outcome(session, due, failure, settings)
        session.commit()
        [again] = claim_due(session, lease_seconds=0) or wait_until(
            lambda: claim_due(session, lease_seconds=0), what="the retry")
        assert again.id == due.id and again.attempt == 2
        assert not record_outcome(session, due, failure, settings)  # a stale claim: no write
        time.sleep(0.6)
        assert record_outcome(session, again, failure, settings)
        session.commit()
        row = session.get(models.WebhookDelivery, due.id, populate_existing=True)
        assert (row.state, row.attempts, row.last_status_code) == ("failed", 2, 500)
        assert claim_due(session, lease_seconds=0) == []
        redeliver(session, "wh_1", due.id)
        session.commit()
        [third] = claim_due(session, lease_seconds=0)
        assert third.attempt == 3


def test_a_receiver_that_drips_its_answer_is_cut_off():
    """httpx's timeout bounds each read; a receiver sending a byte every 0.2 s never trips it,
    but the attempt as a whole is bounded (the claim's lease must outlast it)."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not stop.wait(0.2):
                try:
                    connection.sendall(b"x")
                except OSError:
                    return

    threading.Thread(target=drip, daemon=True).start()
    due = Due(id="msg_x", webhook_id="wh_x", url=f"http://127.0.0.1:{server.getsockname()[1]}/",
              secret=new_secret(), body="{}", attempt=1)

    async def send():
        async with http_client(Settings(webhook_timeout_seconds=5)) as client:
            return await attempt(client, AllowList.parse(["127.0.0.1/32"]), due, 1.0)

    try:
        started = time.monotonic()
        outcome = asyncio.run(send())
        assert time.monotonic() - started < 4
        assert not outcome.delivered and "timed out" in outcome.error
    finally:
        stop.set()
        server.close()


def test_a_claim_whose_process_died_is_taken_again_after_its_lease(
        outbox: sessionmaker[Session]):
    """A replica that claimed a message and died mid-attempt records nothing; once the lease
    ends another claims the same message (same id: the same webhook-id) as attempt 2."""
    with outbox() as session:
        enqueue(session, project="default", event=WebhookEvent.job_failed, data=dict)
        session.commit()
        [lost] = claim_due(session, lease_seconds=0.3)
        session.commit()
        assert claim_due(session, lease_seconds=0.3) == []  # leased: no one else takes it
        session.commit()
        [again] = wait_until(lambda: claim_due(session, lease_seconds=60), what="the lease end")
        assert (again.id, again.attempt) == (lost.id, 2)
