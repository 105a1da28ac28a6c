"""`loraplane serve` as a real process, SIGKILLed after a change that webhooks are told of
but before its delivery: the outbox row committed with the change, so the restarted API
delivers it, once, signed."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.live import LiveServer
from tests.receiver import Receiver, verify_standard_webhook, wait_until
from tests.specs import model_spec

SPEC = model_spec()
FAST = {"LORAPLANE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1/32",
        "LORAPLANE_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "LORAPLANE_WEBHOOK_RETRY_MAX_SECONDS": "0.5",
        "LORAPLANE_WEBHOOK_TIMEOUT_SECONDS": "2"}


@pytest.mark.slow
def test_a_message_survives_a_sigkill_between_the_change_and_its_delivery(db_url: str,
                                                                           tmp_path: Path):
    # First life: the loop's next round is a minute away, so the change is committed and
    # its message not yet sent when the process dies.
    server = LiveServer(tmp_path / "data", db_url,
                        env={**FAST, "LORAPLANE_WEBHOOK_POLL_SECONDS": "60"})
    with Receiver() as receiver:
        try:
            server.start()
            with server.client() as client:
                made = client.post("/webhooks", json={"url": receiver.url,
                                                      "events": ["job.cancelled"]})
                assert made.status_code == 201, made.text
                hook = made.json()
                job = client.post("/jobs", json=SPEC).json()
                assert client.post(f"/jobs/{job['id']}/cancel").json()["state"] == "cancelled"
                [pending] = client.get(f"/webhooks/{hook['id']}/deliveries").json()["items"]
                assert (pending["state"], pending["attempts"]) == ("pending", 0)
            server.stop(signal.SIGKILL)
            assert receiver.requests == []

            # Second life: the loop runs as usual and finds the message in the outbox.
            server.env["LORAPLANE_WEBHOOK_POLL_SECONDS"] = "0.1"
            server.start()
            wait_until(lambda: receiver.requests, timeout=30, what="the message after restart")
            with server.client() as client:
                [done] = wait_until(lambda: [
                    d for d in client.get(f"/webhooks/{hook['id']}/deliveries").json()["items"]
                    if d["state"] == "delivered"], what="the delivery recorded")
        finally:
            server.stop()
            server.kill()
    [(headers, body)] = receiver.requests
    verify_standard_webhook(hook["secret"], headers, body)
    assert headers["webhook-id"] == done["id"] == pending["id"]
    message = json.loads(body)
    assert message["type"] == "job.cancelled" and message["data"]["id"] == job["id"]
    assert [a["status_code"] for a in done["attempt_log"]] == [200]
