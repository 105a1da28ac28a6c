"""Tokens, on SQLite and PostgreSQL: revocation is effective on the next request, only hashes are
stored, the bootstrap token files are readable by their owner only, and a worker token reaches
nothing but the worker protocol, fenced by its lease."""

from __future__ import annotations

import hashlib
import os
import stat

from fastapi.testclient import TestClient
from sqlalchemy import text

from db.base import Base
from service import auth
from service.ids import new_id
from tests.factories import (
    as_caller,
    assert_problem,
    bearer,
    make_token,
    token_parts,
    upload_demo_dataset,
)
from tests.specs import tiny_spec
from worker.demo import demo_dataset_path

TINY = tiny_spec()


def test_revocation_is_effective_on_the_next_request(client: TestClient):
    token_id, token = make_token(client, "user")
    assert client.get("/jobs", headers=bearer(token)).status_code == 200
    revoked = client.delete(f"/tokens/{token_id}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = client.get("/jobs", headers=bearer(token))
    assert_problem(refused, 401, "unauthorized")
    assert refused.headers["www-authenticate"] == "Bearer"
    listed = {t["id"]: t for t in client.get("/tokens").json()["items"]}
    assert listed[token_id]["revoked_at"] is not None

    # a worker loses the protocol at once too
    worker_id, worker = make_token(client, "worker")
    assert client.post("/worker/claim", json={"worker_id": "w"},
                       headers=bearer(worker)).status_code == 204
    client.delete(f"/tokens/{worker_id}")
    assert_problem(client.post("/worker/claim", json={"worker_id": "w"},
                               headers=bearer(worker)), 401)


def test_missing_or_malformed_credentials_get_401(client: TestClient):
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer"},
                    {"Authorization": "Basic YWRtaW46YWRtaW4="},
                    {"Authorization": "Bearer lp_tok_notatoken"},
                    {"Authorization": f"Bearer {auth.new_token_value()}"},  # well formed, unknown
                    {"Authorization": "Bearer " + "x" * 5000}):
        response = client.get("/jobs", headers=headers)
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"


def test_tokens_are_stored_only_as_hashes(client: TestClient, settings):
    token_id, token = make_token(client, "user", "proj-a")
    secret = token_parts(token)[1]
    admin_secret = token_parts(client.headers["Authorization"].removeprefix("Bearer "))[1]
    worker_secret = token_parts((settings.data_dir / "worker.token").read_text().strip())[1]
    assert token not in client.get("/tokens").text and secret not in client.get("/tokens").text
    engine = client.app.state.loraplane.engine
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT secret_sha256 FROM api_tokens WHERE id = :id"),
                              {"id": token_id}).scalar_one()
        assert stored == hashlib.sha256(secret.encode()).hexdigest()
        # No column of any table holds a token or its secret in clear.
        for table in Base.metadata.sorted_tables:
            dump = repr(conn.execute(table.select()).all())
            for value in (secret, admin_secret, worker_secret):
                assert value not in dump, f"a token secret is stored in clear in {table.name}"


def test_bootstrap_token_files_are_owner_only(client: TestClient, settings, tmp_path):
    for name in ("admin.token", "worker.token"):
        mode = stat.S_IMODE((settings.data_dir / name).stat().st_mode)
        assert mode == 0o600, f"{name} is {oct(mode)}"
    # ...even under a permissive umask, and the file's token works at once.
    fresh = tmp_path / "fresh"
    state = client.app.state.loraplane
    old = os.umask(0)
    try:
        with state.session(None) as session:
            admin_file, _ = auth.bootstrap_tokens(session, fresh, admin_token=None,
                                                  worker_token=None)
            session.commit()
    finally:
        os.umask(old)
    for path in (admin_file, fresh / "worker.token"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert client.get("/tokens", headers=bearer(admin_file.read_text().strip())).status_code == 200


# -------------------------------------------------------------- worker tokens


def test_a_worker_token_reaches_only_its_leased_inputs(client: TestClient):
    _, worker = make_token(client, "worker")
    worker_client = as_caller(client, worker)
    assert_problem(worker_client.post("/jobs", json=TINY), 403, "forbidden")
    assert_problem(worker_client.get("/jobs"), 403, "forbidden")
    assert_problem(worker_client.get("/adapters"), 403, "forbidden")

    def job_with_data(name: str) -> tuple[dict, dict]:
        dataset = upload_demo_dataset(client, name) if name == "a" else client.post(
            "/datasets", content=b'{"prompt": "p", "answer": "a"}\n',
            headers={"content-type": "application/jsonl"}).json()
        body = tiny_spec(name)
        body["data"] = {"train_data_paths": [dataset["id"]]}
        return client.post("/jobs", json=body).json(), dataset

    job_a, data_a = job_with_data("a")
    job_b, data_b = job_with_data("b")
    lease_a = worker_client.post("/worker/claim", json={"worker_id": "w1"}).json()
    lease_b = worker_client.post("/worker/claim", json={"worker_id": "w2"}).json()
    assert {lease_a["job"]["id"], lease_b["job"]["id"]} == {job_a["id"], job_b["id"]}
    if lease_a["job"]["id"] != job_a["id"]:
        lease_a, lease_b = lease_b, lease_a
    sha_a = lease_a["datasets"][data_a["id"]]["sha256"]
    sha_b = lease_b["datasets"][data_b["id"]]["sha256"]
    inputs_a = f"/worker/jobs/{job_a['id']}/inputs/{sha_a}"

    held = worker_client.get(inputs_a, headers={"X-Loraplane-Lease": lease_a["lease_id"]})
    assert held.status_code == 200 and held.content == demo_dataset_path().read_bytes()
    # another job's lease, no lease, a made-up lease: nothing
    assert_problem(worker_client.get(inputs_a, headers={"X-Loraplane-Lease": lease_b["lease_id"]}),
                   409, "lease_lost")
    assert_problem(worker_client.get(inputs_a, headers={"X-Loraplane-Lease": new_id("ls")}),
                   409, "lease_lost")
    assert worker_client.head(inputs_a, headers={"X-Loraplane-Lease": lease_b["lease_id"]}
                              ).status_code == 409
    assert_problem(worker_client.get(inputs_a), 422)
    # its own lease, but a blob that is not an input of its job (the other job's dataset)
    assert_problem(worker_client.get(f"/worker/jobs/{job_a['id']}/inputs/{sha_b}",
                                     headers={"X-Loraplane-Lease": lease_a["lease_id"]}), 404)
    # once the lease is handed back, it opens nothing
    released = worker_client.post(f"/worker/jobs/{job_a['id']}/release", json={},
                                  headers={"X-Loraplane-Lease": lease_a["lease_id"]})
    assert released.status_code == 200
    assert_problem(worker_client.get(inputs_a, headers={"X-Loraplane-Lease": lease_a["lease_id"]}),
                   409, "lease_lost")
