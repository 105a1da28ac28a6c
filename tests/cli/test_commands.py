"""The `loraplane` client commands end to end against a real `loraplane serve`.

Commands run in-process through typer's CliRunner (stdout and stderr apart), against one
live server with one local worker for the whole module, on SQLite: the CLI speaks HTTP
only, so the engine changes nothing here (the rest of the suite covers both). Jobs are tiny
(6 steps of the demo model), a few seconds each.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from cli.main import app
from tests import REPO
from tests.live import LiveServer, free_port
from tests.specs import BASE_MODEL, tiny_spec_yaml

pytestmark = pytest.mark.slow


def spec(tmp_path: Path, name: str = "cli-demo", *, model: str = BASE_MODEL,
         data: str = "demo", steps: int = 6) -> Path:
    path = tmp_path / f"{name}-{steps}.yaml"
    path.write_text(tiny_spec_yaml(name, model=model, data=data, steps=steps))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("cli") / "data"
    with LiveServer(data, f"sqlite:///{data / 'loraplane.db'}", workers=1) as live:
        yield live


def run(server: LiveServer, *args: str, token: str | None = None, **env: str) -> Result:
    """`loraplane --server URL --token TOKEN ARGS…`, in-process."""
    runner = CliRunner()
    return runner.invoke(app, ["--server", server.url, "--token", token or server.admin_token,
                               *args], env={"COLUMNS": "200", **env}, catch_exceptions=False)


def as_json(result: Result) -> object:
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def first(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`submit --follow --json` of the demo spec: the finished job."""
    result = run(server, "submit", str(spec(tmp_path_factory.mktemp("spec"))), "--follow",
                 "--json")
    job = as_json(result)
    assert job["state"] == "succeeded", job["error"]
    return job


def test_submit_follow_shows_progress_and_the_adapter(server: LiveServer, tmp_path: Path) -> None:
    result = run(server, "submit", str(spec(tmp_path, "cli-follow")), "--follow")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "submitted job_" in result.stdout
    assert "succeeded" in result.stdout and "adapter cli-follow:1 (ad_" in result.stdout
    assert "continue from it with lora_path: http" in result.stdout
    assert "queued → running" in result.stderr  # state changes and log lines above the bar
    assert "6/6" in result.stderr and "loss" in result.stderr  # the bar's last state


def test_pull_continue_and_lineage(server: LiveServer, first: dict, tmp_path: Path) -> None:
    dest = tmp_path / "pulled"
    result = run(server, "adapters", "pull", "cli-demo:1", str(dest))
    assert result.exit_code == 0, result.stderr
    assert "sha256 verified" in result.stdout

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(server.data_dir / "models" / "demo-tiny-llama")
    model = PeftModel.from_pretrained(base, dest)
    assert any("lora_A" in name for name, _ in model.named_parameters())

    child = as_json(run(server, "submit", str(spec(tmp_path)), "--set",
                        "actor.model.lora_path=cli-demo:1", "--follow", "--json"))
    assert child["state"] == "succeeded" and child["parent_adapter_id"] == first["adapter_id"]
    shown = as_json(run(server, "adapters", "show", "cli-demo:2", "--json"))
    assert shown["parent_adapter_id"] == first["adapter_id"]
    assert [(e["name"], e["version"]) for e in shown["lineage"]] == [("cli-demo", 1)]
    table = run(server, "adapters", "show", "cli-demo")  # a bare name: the newest version
    assert table.exit_code == 0 and "cli-demo:2 ← cli-demo:1" in table.stdout
    listed = as_json(run(server, "adapters", "list", "--name", "cli-demo", "--json"))
    assert [a["version"] for a in listed] == [2, 1]
    assert first["adapter_id"] in run(server, "adapters", "list").stdout


def test_pull_resumes_and_replaces_what_does_not_verify(server: LiveServer, first: dict,
                                                       tmp_path: Path) -> None:
    with server.client() as http:
        adapter = http.get(f"/adapters/{first['adapter_id']}").json()
        weights = next(f for f in adapter["files"] if f["name"] == "adapter_model.safetensors")
        data = http.get(f"/adapters/{adapter['id']}/files/{weights['name']}").content
    dest = tmp_path / "resumed"
    dest.mkdir()
    (dest / (weights["name"] + ".part")).write_bytes(data[: len(data) // 3])  # an earlier cut
    (dest / "adapter_config.json").write_text("{}")  # a stale file of another adapter
    result = run(server, "adapters", "pull", adapter["id"], str(dest), "--json")
    report = as_json(result)
    assert report["verified"] is True and report["adapter"]["id"] == adapter["id"]
    for ref in adapter["files"]:
        assert hashlib.sha256((dest / ref["name"]).read_bytes()).hexdigest() == ref["sha256"]
    assert not list(dest.glob("*.part"))


class _Tamper(httpx.HTTPTransport):
    """The real server, with one byte flipped in every adapter file it serves."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if "/files/" not in request.url.path or response.status_code >= 300:
            return response
        body = bytearray(response.read())
        body[len(body) // 2] ^= 0xFF
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=httpx.ByteStream(bytes(body)), request=request)


def test_pull_that_does_not_verify_exits_7(server: LiveServer, first: dict, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import cli.common

    connect = cli.common.connect

    def tampered(url: str | None, token: str | None):
        sdk = connect(url, token)
        sdk.set_httpx_client(httpx.Client(base_url=url, transport=_Tamper(), timeout=30,
                                          headers={"Authorization": f"Bearer {token}"}))
        return sdk

    monkeypatch.setattr(cli.common, "connect", tampered)
    dest = tmp_path / "tampered"
    result = run(server, "adapters", "pull", first["adapter_id"], str(dest))
    assert result.exit_code == 7, result.stdout + result.stderr
    assert "hashes to" in result.stderr
    assert not [p for p in dest.rglob("*") if p.is_file()]  # the bad bytes are deleted


def test_a_failed_job_exits_1(server: LiveServer, tmp_path: Path) -> None:
    result = run(server, "submit", str(spec(tmp_path, "broken", model="no-such-model")),
                 "--follow")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "failed" in result.stdout and "model_not_found" in result.stdout
    job_id = result.stdout.split("submitted ")[1].split(":")[0].strip()
    assert run(server, "jobs", "wait", job_id).exit_code == 1
    shown = as_json(run(server, "jobs", "show", job_id, "--json"))
    assert shown["error"]["code"] == "model_not_found"
    assert "model_not_found" in run(server, "jobs", "show", job_id).stdout


def test_jobs_list_show_and_logs(server: LiveServer, first: dict) -> None:
    jobs = as_json(run(server, "jobs", "list", "--json"))
    assert first["id"] in [j["id"] for j in jobs]
    assert first["id"] in run(server, "jobs", "list", "--state", "succeeded").stdout
    shown = as_json(run(server, "jobs", "show", first["id"], "--json"))
    assert shown["progress"] == {"step": 6, "total": 6}
    assert "step 6 of 6" in run(server, "jobs", "show", first["id"]).stdout

    lines = run(server, "jobs", "logs", first["id"], "--json").stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert {"state", "log", "metrics"} <= {e["kind"] for e in events}
    text = run(server, "jobs", "logs", first["id"]).stdout
    assert "metrics" in text and "step 6/6" in text and "running → succeeded" in text
    followed = run(server, "jobs", "logs", first["id"], "-f", "--json")  # ends with the job
    assert followed.exit_code == 0
    assert [json.loads(line)["id"] for line in followed.stdout.splitlines()] == \
        [e["id"] for e in events]


def test_timeouts_and_cancelling_a_running_job(server: LiveServer, tmp_path: Path) -> None:
    followed = run(server, "submit", str(spec(tmp_path, "long", steps=5000)), "--follow",
                   "--timeout", "3")
    assert followed.exit_code == 124, followed.stdout + followed.stderr
    assert "timed out" in followed.stderr
    job = {"id": followed.stdout.split("submitted ")[1].split(":")[0].strip()}
    try:
        waited = run(server, "jobs", "wait", job["id"], "--timeout", "1")
        assert waited.exit_code == 124, waited.stdout + waited.stderr
    finally:
        cancelled = run(server, "jobs", "cancel", job["id"])
    assert cancelled.exit_code == 0 and job["id"] in cancelled.stdout
    assert run(server, "jobs", "wait", job["id"], "--timeout", "60").exit_code == 1
    assert as_json(run(server, "jobs", "show", job["id"], "--json"))["state"] == "cancelled"
    listed = as_json(run(server, "jobs", "list", "--state", "cancelled", "--json"))
    assert job["id"] in [j["id"] for j in listed]


def test_datasets_upload_and_train_on_it(server: LiveServer, tmp_path: Path) -> None:
    from worker.demo import demo_dataset_path

    uploaded = as_json(run(server, "datasets", "upload", str(demo_dataset_path()),
                           "--name", "demo.jsonl", "--json"))
    assert uploaded["id"].startswith("ds_") and uploaded["rows"] == 200
    assert uploaded["id"] in run(server, "datasets", "list").stdout
    assert as_json(run(server, "datasets", "show", uploaded["id"], "--json"))["rows"] == 200
    table = run(server, "datasets", "upload", str(demo_dataset_path()))
    assert table.exit_code == 0 and "rows" in table.stdout and "200" in table.stdout

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a"}\nnot json\n')
    refused = run(server, "datasets", "upload", str(bad))
    assert refused.exit_code == 6, refused.stdout + refused.stderr
    assert "line 2" in refused.stderr

    trained = run(server, "submit", str(spec(tmp_path, "on-upload", data=uploaded["id"])),
                  "--follow")
    assert trained.exit_code == 0, trained.stdout + trained.stderr


def test_tokens_create_list_revoke(server: LiveServer) -> None:
    created = as_json(run(server, "tokens", "create", "--role", "user", "--project", "team-a",
                          "--name", "ci", "--json"))
    token = created["token"]
    assert token.startswith("lp_tok_") and created["project"] == "team-a"
    listed = as_json(run(server, "tokens", "list", "--json"))
    assert created["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)  # values are never listed
    assert "team-a" in run(server, "tokens", "list").stdout

    assert run(server, "jobs", "list", token=token).exit_code == 0  # a user token reads jobs
    assert run(server, "tokens", "list", token=token).exit_code == 4  # but is no admin
    plain = run(server, "tokens", "create", "--role", "worker")
    assert plain.exit_code == 0 and plain.stdout.strip().startswith("lp_tok_")

    revoked = run(server, "tokens", "revoke", created["id"])
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    assert run(server, "jobs", "list", token=token).exit_code == 4


def test_exit_codes(server: LiveServer, tmp_path: Path) -> None:
    missing = run(server, "jobs", "show", "job_00000000000000000000000000")
    assert missing.exit_code == 3 and "404" in missing.stderr
    assert run(server, "adapters", "show", "nothing:7").exit_code == 3
    assert run(server, "jobs", "list", token="lp_wrong").exit_code == 4
    unreachable = CliRunner().invoke(app, ["--server", f"http://127.0.0.1:{free_port()}",
                                           "--token", "x", "jobs", "list"])
    assert unreachable.exit_code == 5 and "cannot reach" in unreachable.stderr
    typo = spec(tmp_path, "typo")
    typo.write_text(typo.read_text().replace("is_lora:", "is_lorra:"))
    refused = run(server, "submit", str(typo))
    assert refused.exit_code == 6 and "is_lora" in refused.stderr
    assert run(server, "submit", str(tmp_path / "absent.yaml")).exit_code == 2
    assert run(server, "submit", str(spec(tmp_path)), "--set", "no-equals").exit_code == 2
    assert run(server, "adapters", "show", "not a ref!").exit_code == 2
    assert run(server, "jobs", "frobnicate").exit_code == 2
    assert "Exit codes" in run(server, "--help").stdout


def test_token_from_the_data_dir(server: LiveServer) -> None:
    """No --token: LORAPLANE_TOKEN, else the admin.token under LORAPLANE_DATA_DIR."""
    runner = CliRunner()
    env = {"LORAPLANE_SERVER": server.url, "LORAPLANE_DATA_DIR": str(server.data_dir),
           "LORAPLANE_TOKEN": None, "LORAPLANE_ADMIN_TOKEN": None}
    assert runner.invoke(app, ["jobs", "list"], env=env).exit_code == 0
    env["LORAPLANE_DATA_DIR"] = str(server.data_dir / "nowhere")
    assert runner.invoke(app, ["jobs", "list"], env=env).exit_code == 4
    env["LORAPLANE_TOKEN"] = server.admin_token
    assert runner.invoke(app, ["jobs", "list"], env=env).exit_code == 0
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_the_demo_spec_of_the_walkthrough_is_valid() -> None:
    from service.spec import parse_body

    demo = REPO / "examples" / "demo.yaml"
    parsed = parse_body(demo.read_bytes(), "application/yaml", 1 << 20)
    model = parsed.spec.actor.model
    assert (model.model_path, model.is_lora, model.lora_rank) == ("demo-tiny-llama", True, 8)
    assert parsed.spec.runner.experiment_name == "demo-adapter"
    assert parsed.ignored_keys == []


def test_eval_waits_and_shows_the_figures(server: LiveServer, first: dict) -> None:
    adapter = f"cli-demo:{1}"
    result = run(server, "eval", adapter, "--dataset", "demo", "--max-samples", "4",
                 "--max-new-tokens", "4")
    assert result.exit_code == 0, result.stdout + result.stderr
    for word in ("evaluation", "job_", "succeeded", "loss", "perplexity", "exact match", "/4 ("):
        assert word in result.stdout
    evaluation = as_json(run(server, "eval", "--base-model", BASE_MODEL, "--max-samples", "4",
                             "--max-new-tokens", "4", "--json"))
    assert evaluation["state"] == "succeeded" and evaluation["adapter"] is None
    assert evaluation["results"]["rows"] == 4 and len(evaluation["results"]["examples"]) == 4
    no_wait = as_json(run(server, "eval", adapter, "--no-wait", "--json"))
    assert no_wait["state"] in ("queued", "running")
    refused = run(server, "eval", "--max-samples", "4")  # neither adapter nor base model
    assert refused.exit_code != 0 and "base_model" in refused.stderr


def test_sample_prints_the_completions_greedy_twice_alike(server: LiveServer, first: dict) -> None:
    def completions() -> list[str]:
        done = as_json(run(server, "sample", "cli-demo:1", "-p", "max 66 2\n", "-p", "hi",
                           "--max-new-tokens", "6", "--json"))
        assert done["state"] == "succeeded", done["error"]
        return [c["completion"] for c in done["results"]["completions"]]

    assert completions() == completions()
    shown = run(server, "sample", "cli-demo:1", "-p", "hello", "--max-new-tokens", "4")
    assert shown.exit_code == 0 and "hello" in shown.stdout
    assert run(server, "sample", "cli-demo:1").exit_code != 0  # no --prompt


def test_a_bad_setting_is_a_usage_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve`, `migrate` and `worker` read their settings first: a bad option or variable
    exits 2 with the variable's name, before anything starts (no traceback)."""
    monkeypatch.setenv("LORAPLANE_API_PROCESSES", "1")  # restored after: serve sets it
    bad = CliRunner().invoke(app, ["serve", "--api-processes", "0"])
    assert bad.exit_code == 2, bad.output
    assert "LORAPLANE_API_PROCESSES='0': Input should be greater than or equal to 1" in bad.stderr
    assert "Traceback" not in bad.output
    bad = CliRunner().invoke(app, ["migrate"], env={"LORAPLANE_LEASE_SECONDS": "soon"})
    assert bad.exit_code == 2 and "LORAPLANE_LEASE_SECONDS='soon'" in bad.stderr, bad.output
