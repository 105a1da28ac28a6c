"""`loraplane webhooks create/list/deliveries/redeliver/delete` against a real `loraplane
serve` (SQLite: the CLI speaks HTTP only) and a real receiver on a loopback port."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from cli.main import app
from tests.live import LiveServer
from tests.receiver import Receiver, verify_standard_webhook, wait_until
from tests.specs import model_spec

pytestmark = pytest.mark.slow


def run(server: LiveServer, *args: str) -> Result:
    result = CliRunner().invoke(app, ["--server", server.url, "--token", server.admin_token,
                                      *args], env={"COLUMNS": "200"}, catch_exceptions=False)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result


def test_webhooks_commands(tmp_path: Path):
    env = {"LORAPLANE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1/32",
           "LORAPLANE_WEBHOOK_POLL_SECONDS": "0.1"}
    data = tmp_path / "data"
    with Receiver() as receiver, LiveServer(data, f"sqlite:///{data / 'lp.db'}",
                                            env=env) as server:
        made = run(server, "webhooks", "create", receiver.url, "-e", "job.cancelled",
                   "--description", "ci")
        secret = made.stdout.strip()
        assert secret.startswith("whsec_") and "shown once" in made.stderr
        hook_id = made.stderr.split()[1]
        listed = run(server, "webhooks", "list")
        assert hook_id in listed.stdout and "job.cancelled" in listed.stdout
        assert "whsec_" not in listed.stdout

        refused = CliRunner().invoke(app, ["--server", server.url, "--token",
                                           server.admin_token, "webhooks", "create",
                                           "http://10.0.0.1/", "-e", "job.failed"])
        assert refused.exit_code != 0 and "LORAPLANE_WEBHOOK_ALLOWED_HOSTS" in refused.stderr

        with server.client() as client:
            submitted = client.post("/jobs", json=model_spec())
            assert submitted.status_code == 201, submitted.text
            job = submitted.json()
            client.post(f"/jobs/{job['id']}/cancel")
        wait_until(lambda: receiver.requests, what="the message")
        [delivery] = wait_until(lambda: [
            d for d in json.loads(run(server, "webhooks", "deliveries", hook_id,
                                      "--json").stdout) if d["state"] == "delivered"])
        shown = run(server, "webhooks", "deliveries", hook_id).stdout
        assert delivery["id"] in shown and "delivered" in shown and "200" in shown

        run(server, "webhooks", "redeliver", hook_id, delivery["id"])
        wait_until(lambda: len(receiver.requests) == 2, what="the redelivery")
        for headers, body in receiver.requests:
            assert headers["webhook-id"] == delivery["id"]
            verify_standard_webhook(secret, headers, body)

        run(server, "webhooks", "delete", hook_id)
        assert json.loads(run(server, "webhooks", "list", "--json").stdout) == []
