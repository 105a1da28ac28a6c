"""Job intake through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests import REPO
from tests.conftest import authenticate_as_admin

YAML = {"content-type": "application/yaml"}
FIXTURES = REPO / "tests" / "fixtures"

# The three snippets of RLinf's LoRA page, each with a model_path added.
NEW_LORA = """
actor:
  model:
    model_path: demo-tiny-llama
    is_lora: True
    lora_rank: 32
    lora_path: null
"""
CONTINUE_LORA = """
actor:
  model:
    model_path: demo-tiny-llama
    is_lora: True
    lora_rank: 32
    lora_path: "/path/to/pretrained/lora/weights"
"""
FULL_FT = """
actor:
  model:
    model_path: demo-tiny-llama
    is_lora: False
    lora_rank: 32  # Ignored when is_lora=False
"""


def submit(client: TestClient, body: str, **headers: str):
    return client.post("/jobs", content=body.encode(), headers={**YAML, **headers})


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (NEW_LORA, {"is_lora": True, "lora_rank": 32, "lora_path": None}),
        (CONTINUE_LORA, {"is_lora": True, "lora_rank": 32,
                         "lora_path": "/path/to/pretrained/lora/weights"}),
        (FULL_FT, {"is_lora": False, "lora_rank": 32, "lora_path": None}),
    ],
    ids=["new-lora", "continue-lora", "full-ft"],
)
def test_rlinf_snippets_submit_and_read_back(settings, snippet: str, expected: dict):
    from api.app import create_app

    # The page's `lora_path` is a worker-local folder: the operator allows its root.
    settings.lora_path_roots = [Path("/path/to/pretrained")]
    with TestClient(create_app(settings)) as client:
        authenticate_as_admin(client, settings)
        _check_snippet(client, snippet, expected)


def _check_snippet(client: TestClient, snippet: str, expected: dict) -> None:
    response = submit(client, snippet)
    assert response.status_code == 201, response.text
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert job["id"].startswith("job_")
    assert job["state"] == "queued"
    again = client.get(f"/jobs/{job['id']}").json()
    model = again["spec"]["actor"]["model"]
    assert {k: model[k] for k in expected} == expected
    assert model["model_path"] == "demo-tiny-llama"
    assert again["ignored_keys"] == []


def test_json_and_yaml_give_the_same_spec(client: TestClient):
    as_yaml = submit(client, NEW_LORA).json()
    document = {"actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": True,
                                    "lora_rank": 32, "lora_path": None}}}
    as_json = client.post("/jobs", json=document).json()
    assert as_json["spec"] == as_yaml["spec"]


def test_whole_rlinf_sft_config_submits_unchanged(client: TestClient, settings):
    settings.data_path_roots = [Path("/data/sft")]  # the config's data lives on the workers
    body = (FIXTURES / "rlinf_llm_sft.yaml").read_text()
    response = submit(client, body)
    assert response.status_code == 201, response.text
    job = response.json()
    for section in ["algorithm", "critic", "defaults", "hydra", "reward"]:
        assert section in job["ignored_keys"]
    for key in ["actor.group_name",
                "actor.model.model_type", "runner.logger", "runner.output_dir", "data.num_workers"]:
        assert key in job["ignored_keys"]
    applied = ["actor.fsdp_config.gradient_checkpointing", "actor.fsdp_config.mixed_precision",
               "actor.fsdp_config.sharding_strategy", "cluster"]
    assert not [key for key in job["ignored_keys"] if key.startswith(tuple(applied))]
    assert job["spec"]["actor"]["fsdp_config"] == {
        "gradient_checkpointing": True,
        "sharding_strategy": "full_shard",
        "mixed_precision": {"param_dtype": "bf16", "reduce_dtype": "fp32", "buffer_dtype": "bf16"},
    }
    assert job["spec"]["cluster"] == {"num_nodes": 1, "component_placement": {"actor": "all"}}
    assert job["devices"] is None  # `all`: whatever the claiming worker offers
    spec = job["spec"]
    assert spec["actor"]["model"]["is_lora"] is True
    assert spec["actor"]["model"]["lora_rank"] == 32
    assert spec["actor"]["global_batch_size"] == 256
    assert spec["actor"]["optim"]["lr"] == 5e-6
    assert spec["actor"]["optim"]["lr_scheduler"] == "cosine"
    assert spec["data"]["seed"] == 42  # ${actor.seed} resolved
    assert spec["data"]["train_data_paths"] == ["/data/sft/sft_train.jsonl"]
    assert spec["runner"]["experiment_name"] == "qwen3_sft_llm"


ALIAS_BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefg", "bcdefgh")
)


def _model(extra: str) -> str:
    return f"actor:\n  model:\n    model_path: demo-tiny-llama\n{extra}"


BAD_INPUTS = [
    ("rank-zero", _model("    is_lora: true\n    lora_rank: 0\n"), 422, "lora_rank"),
    ("rank-negative", _model("    is_lora: true\n    lora_rank: -8\n"), 422, "lora_rank"),
    ("rank-float", _model("    is_lora: true\n    lora_rank: 2.5\n"), 422, "lora_rank"),
    ("rank-string", _model("    is_lora: true\n    lora_rank: '32'\n"), 422, "lora_rank"),
    ("missing-model-path", "actor:\n  model:\n    is_lora: true\n    lora_rank: 8\n", 422,
     "model_path"),
    ("typo", _model("    is_lorra: true\n    lora_rank: 8\n"), 422, "did you mean 'is_lora'"),
    ("lora-path-full-ft", _model("    is_lora: false\n    lora_path: ad_x\n"), 422, "is_lora is false"),
    ("invalid-yaml", "actor: [model\n", 422, "invalid YAML"),
    ("top-level-list", "- actor\n- data\n", 422, "mapping at the top level"),
    ("alias-bomb", ALIAS_BOMB, 422, "alias bomb"),
    ("huge-body", "x: " + "a" * (10 << 20) + "\n", 413, "limit"),
    ("deep-nesting", "a: " + "[" * 200 + "]" * 200 + "\n", 422, "deeper"),
    ("duplicate-key", _model("    is_lora: true\n    is_lora: false\n"), 422, "twice"),
    ("not-a-number", _model("    is_lora: true\n    lora_rank: 8\n    lora_dropout: .nan\n"), 422,
     "finite"),
    ("bad-interpolation", _model("    is_lora: true\n    lora_rank: ${runner.nope}\n"), 422,
     "interpolation"),
    ("env-interpolation", _model("    is_lora: true\n    lora_rank: 8\n    lora_path: ${oc.env:HOME}\n"),
     422, "interpolation"),
    ("batch-not-multiple", ("actor:\n  micro_batch_size: 3\n  global_batch_size: 8\n  model:\n"
                            "    model_path: m\n"), 422, "multiple"),
    ("bad-scheduler", _model("    is_lora: false\n") + "  optim:\n    lr_scheduler: step\n", 422,
     "lr_scheduler"),
]


@pytest.mark.parametrize(("body", "status", "needle"), [b[1:] for b in BAD_INPUTS],
                         ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_are_clear_problems(client: TestClient, body: str, status: int, needle: str):
    response = submit(client, body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert {"type", "title", "detail"} <= problem.keys()
    text = problem["detail"] + json.dumps(problem.get("errors", []))
    assert needle in text
    assert client.get("/jobs").json()["items"] == []  # nothing stored


def test_field_errors_carry_their_path(client: TestClient):
    problem = submit(client, _model("    is_lora: true\n    lora_rank: '32'\n")).json()
    assert problem["errors"][0]["loc"] == "actor.model.lora_rank"
    assert "'32'" in problem["errors"][0]["msg"]


def test_unsupported_content_type_is_415(client: TestClient):
    response = client.post("/jobs", content=NEW_LORA, headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert "application/yaml" in response.json()["detail"]


def test_framework_errors_are_problems_too(client: TestClient):
    for response, status in [
        (client.get("/jobs/job_doesnotexist"), 404),
        (client.get("/no/such/route"), 404),
        (client.delete("/jobs"), 405),
        (client.get("/jobs", params={"limit": "many"}), 422),
        (client.get("/jobs", params={"state": "sleeping"}), 422),
        (client.get("/jobs", params={"cursor": "!!!"}), 422),
    ]:
        assert response.status_code == status
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == status


def test_idempotency_key(client: TestClient):
    first = submit(client, NEW_LORA, **{"Idempotency-Key": "k-1"})
    retry = submit(client, NEW_LORA, **{"Idempotency-Key": "k-1"})
    assert first.status_code == retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"]
    assert retry.headers["idempotent-replayed"] == "true"
    other = submit(client, FULL_FT, **{"Idempotency-Key": "k-1"})
    assert other.status_code == 409
    assert first.json()["id"] in other.json()["detail"]
    assert len(client.get("/jobs").json()["items"]) == 1


def test_cancel_queued_job(client: TestClient):
    job = submit(client, NEW_LORA).json()
    cancelled = client.post(f"/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["finished_at"] is not None
    again = client.post(f"/jobs/{job['id']}/cancel")
    assert again.status_code == 409
    events = client.get(f"/jobs/{job['id']}/events").json()["items"]
    assert [e["data"]["to"] for e in events if e["kind"] == "state"] == ["queued", "cancelled"]


def test_state_filter(client: TestClient):
    keep = submit(client, NEW_LORA).json()
    gone = submit(client, NEW_LORA).json()
    client.post(f"/jobs/{gone['id']}/cancel")
    queued = client.get("/jobs", params={"state": "queued"}).json()["items"]
    assert [j["id"] for j in queued] == [keep["id"]]


def test_pagination_is_exact_while_jobs_are_added(client: TestClient, settings):
    from api.app import create_app

    first = [submit(client, NEW_LORA).json()["id"] for _ in range(25)]
    stop = threading.Event()
    added: list[str] = []

    def keep_adding() -> None:
        with TestClient(create_app(settings, migrate=False)) as other:
            authenticate_as_admin(other, settings)
            while not stop.is_set() and len(added) < 40:
                added.append(submit(other, NEW_LORA).json()["id"])

    writer = threading.Thread(target=keep_adding)
    writer.start()
    seen: list[str] = []
    cursor = None
    try:
        while True:
            params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
            page = client.get("/jobs", params=params).json()
            seen.extend(j["id"] for j in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
    finally:
        stop.set()
        writer.join()
    assert len(seen) == len(set(seen)), "a job appeared twice"
    assert set(first) <= set(seen), "a job that existed before paging was missed"
    assert set(seen) <= set(first) | set(added)


def test_readyz_and_healthz(client: TestClient):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_readyz_fails_when_schema_is_behind(tmp_path: Path):
    from api.app import create_app
    from service.settings import Settings

    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    with TestClient(create_app(settings, migrate=False)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["code"] == "migrations_pending"


def test_readyz_fails_when_database_unreachable(tmp_path: Path):
    from api.app import create_app
    from service.settings import Settings

    settings = Settings(data_dir=tmp_path,
                        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    with TestClient(create_app(settings, migrate=False)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["code"] == "database_unavailable"
        assert client.get("/healthz").status_code == 200
        from service.auth import new_token_value

        listing = client.get("/jobs", headers={"Authorization": f"Bearer {new_token_value()}"})
        assert listing.status_code == 503


def test_metrics_count_jobs_and_requests(client: TestClient):
    submit(client, NEW_LORA)
    text = client.get("/metrics").text
    assert 'loraplane_jobs{state="queued"} 1.0' in text
    assert 'loraplane_http_requests_total{method="POST",route="/jobs",status="201"} 1.0' in text


def test_reads_go_on_while_a_writer_holds_the_sqlite_lock(client: TestClient, settings):
    """GET requests (their token check included) begin DEFERRED: under WAL they read while
    another connection holds the write lock, instead of queueing behind it (busy timeout 30 s)."""
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite's single-writer lock")
    import time

    from sqlalchemy import text

    from db.engine import make_engine

    job_id = submit(client, NEW_LORA).json()["id"]
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as writer:
            writer.execute(text("DELETE FROM job_events WHERE id < 0"))  # BEGIN IMMEDIATE: held
            started = time.monotonic()
            assert client.get(f"/jobs/{job_id}").json()["state"] == "queued"
            assert client.get("/jobs").json()["items"][0]["id"] == job_id
            assert client.get(f"/jobs/{job_id}/events").status_code == 200
            assert time.monotonic() - started < 5
    finally:
        engine.dispose()


def test_requests_give_their_connections_back(client: TestClient):
    """Every request's session is closed whatever the route did: read, write, 404, 422."""
    job_id = submit(client, NEW_LORA).json()["id"]
    for _ in range(3):
        assert client.get("/jobs").status_code == 200
        assert client.get(f"/jobs/{job_id}").status_code == 200
        assert client.get("/jobs/job_nope").status_code == 404
        assert submit(client, "actor: {model: {is_lorra: true}}").status_code == 422
        assert client.get("/adapters/ad_nope/files/x").status_code == 404
    assert client.post(f"/jobs/{job_id}/cancel").status_code == 200
    assert client.app.state.loraplane.engine.pool.checkedout() == 0
