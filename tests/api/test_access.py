"""Access control, on SQLite and PostgreSQL: who may call what, and what each project sees.

- The matrix: every route of the app (enumerated from `app.routes`, so a new endpoint cannot
  be forgotten) × every kind of caller → allowed, 401 or 403.
- Project isolation: a user of project A can neither see nor touch nor reference anything of
  project B, and B's objects are indistinguishable from objects that do not exist (the same
  status and the same message, ids aside). B's objects are made by a real job run by a real
  in-process worker.
- Tokens: revocation is effective on the next request, only hashes are stored, the bootstrap
  token files are readable by their owner only, and a worker token reaches nothing but the
  worker protocol, fenced by its lease.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from db.base import Base
from service import auth
from service.ids import new_id
from worker import Worker, WorkerOptions
from worker.client import WorkerClient
from worker.demo import demo_dataset_path

SERVER = "http://testserver"
TINY = {
    "actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": True, "lora_rank": 4},
              "optim": {"lr": 0.01}, "micro_batch_size": 4, "global_batch_size": 8},
    "runner": {"max_steps": 4, "save_interval": 2, "experiment_name": "tiny"},
}


# ---------------------------------------------------------------------------- helpers


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_parts(token: str) -> tuple[str, str]:
    """(token id, secret) of an `lp_tok_…_secret` token (the secret may hold `_`)."""
    match = auth.TOKEN_PATTERN.match(token)
    assert match, token
    return match.group(1), match.group(2)


def make_token(client: TestClient, role: str, project: str = "default") -> tuple[str, str]:
    """A new token made by the admin: (token id, token value)."""
    made = client.post("/tokens", json={"role": role, "project": project, "name": f"{role} test"})
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["token"]


def as_caller(client: TestClient, token: str | None) -> TestClient:
    """Another client on the same running app, sending `token` (or no token)."""
    return TestClient(client.app, base_url=SERVER, headers=bearer(token) if token else {})


def spec(name: str = "tiny", **model) -> dict:
    body = json.loads(json.dumps(TINY))
    body["actor"]["model"].update(model)
    body["runner"]["experiment_name"] = name
    return body


def run_worker(client: TestClient, settings, token: str, jobs: int = 1,
               on_request: Callable[[httpx.Request], None] | None = None) -> None:
    """Run `jobs` jobs with an in-process worker that speaks HTTP with a worker token."""
    http = as_caller(client, token)
    if on_request is not None:
        http.event_hooks["request"].append(on_request)
    options = WorkerOptions(server=SERVER, token=None, models_dir=settings.models_dir,
                            work_dir=settings.data_dir / "worker", device="cpu",
                            wait_seconds=0, once=True)
    worker = Worker(options, client=WorkerClient(SERVER, http=http))
    for _ in range(jobs):
        worker.run()


def upload_demo_dataset(caller: TestClient, name: str = "demo.jsonl") -> dict:
    uploaded = caller.post(f"/datasets?name={name}", content=demo_dataset_path().read_bytes(),
                           headers={"content-type": "application/jsonl"})
    assert uploaded.status_code == 201, uploaded.text
    return uploaded.json()


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.request.method, response.request.url,
                                            response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    if code is not None:
        assert body["code"] == code, body
    return body


# ---------------------------------------------------------------------------- the matrix

PUBLIC, ADMIN, MEMBER, WORKER = "public", "admin only", "admin and user", "worker and admin"
ALLOWED = {
    PUBLIC: {"admin", "user", "worker", "anonymous", "revoked", "forged"},
    ADMIN: {"admin"},
    MEMBER: {"admin", "user"},
    WORKER: {"admin", "worker"},
}
CALLERS = ("admin", "user", "worker", "anonymous", "revoked", "forged")

# Every route of the app and who may call it. A route missing here fails the test.
ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): PUBLIC,
    ("HEAD", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("HEAD", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("HEAD", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("HEAD", "/redoc"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): ADMIN,
    ("POST", "/tokens"): ADMIN,
    ("GET", "/tokens"): ADMIN,
    ("DELETE", "/tokens/{token_id}"): ADMIN,
    ("POST", "/jobs"): MEMBER,
    ("GET", "/jobs"): MEMBER,
    ("GET", "/jobs/{job_id}"): MEMBER,
    ("POST", "/jobs/{job_id}/cancel"): MEMBER,
    ("GET", "/jobs/{job_id}/events"): MEMBER,
    ("GET", "/jobs/{job_id}/checkpoints"): MEMBER,
    ("GET", "/jobs/{job_id}/checkpoints/{checkpoint_id}"): MEMBER,
    ("GET", "/jobs/{job_id}/checkpoints/{checkpoint_id}/files/{name:path}"): MEMBER,
    ("HEAD", "/jobs/{job_id}/checkpoints/{checkpoint_id}/files/{name:path}"): MEMBER,
    ("GET", "/adapters"): MEMBER,
    ("GET", "/adapters/{adapter_id}"): MEMBER,
    ("DELETE", "/adapters/{adapter_id}"): MEMBER,
    ("GET", "/adapters/{adapter_id}/files/{name:path}"): MEMBER,
    ("HEAD", "/adapters/{adapter_id}/files/{name:path}"): MEMBER,
    ("GET", "/adapters/{adapter_id}/archive"): MEMBER,
    ("GET", "/aliases/{name}/{alias}"): MEMBER,
    ("PUT", "/aliases/{name}/{alias}"): MEMBER,
    ("DELETE", "/aliases/{name}/{alias}"): MEMBER,
    ("POST", "/datasets"): MEMBER,
    ("GET", "/datasets"): MEMBER,
    ("GET", "/datasets/{dataset_id}"): MEMBER,
    ("GET", "/datasets/{dataset_id}/content"): MEMBER,
    ("HEAD", "/datasets/{dataset_id}/content"): MEMBER,
    ("POST", "/worker/claim"): WORKER,
    ("POST", "/worker/jobs/{job_id}/heartbeat"): WORKER,
    ("POST", "/worker/jobs/{job_id}/events"): WORKER,
    ("POST", "/worker/jobs/{job_id}/fail"): WORKER,
    ("POST", "/worker/jobs/{job_id}/release"): WORKER,
    ("POST", "/worker/jobs/{job_id}/cancelled"): WORKER,
    ("PUT", "/worker/jobs/{job_id}/blobs/{sha256}"): WORKER,
    ("GET", "/worker/jobs/{job_id}/inputs/{sha256}"): WORKER,
    ("HEAD", "/worker/jobs/{job_id}/inputs/{sha256}"): WORKER,
    ("POST", "/worker/jobs/{job_id}/checkpoints"): WORKER,
    ("POST", "/worker/jobs/{job_id}/complete"): WORKER,
}

# Made-up values for path parameters: the matrix is about access, not about objects.
PATH_VALUES = {
    "job_id": "job_" + "0" * 26,
    "checkpoint_id": "ck_" + "0" * 26,
    "adapter_id": "ad_" + "0" * 26,
    "dataset_id": "ds_" + "0" * 26,
    "token_id": "tok_" + "0" * 26,
    "sha256": "0" * 64,
    "name": "adapter_config.json",
    "alias": "prod",
}


def app_routes(app) -> Iterator[tuple[str, str]]:
    """(method, path) of every route, through included routers however FastAPI nests them."""

    def walk(routes):
        for route in routes:
            if hasattr(route, "effective_route_contexts"):  # FastAPI's included routers
                yield from route.effective_route_contexts()
            elif hasattr(route, "routes") and not hasattr(route, "methods"):
                yield from walk(route.routes)
            else:
                yield route

    for route in walk(app.routes):
        for method in sorted(route.methods or ()):
            yield method, route.path


def concrete(path: str) -> str:
    def value(segment: str) -> str:
        if not (segment.startswith("{") and segment.endswith("}")):
            return segment
        name = segment[1:-1].split(":")[0]
        assert name in PATH_VALUES, f"no made-up value for path parameter {name!r} of {path}"
        return quote(PATH_VALUES[name])

    return "/".join(value(s) for s in path.split("/"))


def test_every_route_has_an_access_rule(client: TestClient):
    routes = set(app_routes(client.app))
    missing = sorted(routes - ACCESS.keys())
    stale = sorted(ACCESS.keys() - routes)
    assert not missing, f"routes with no access expectation (add them to ACCESS): {missing}"
    assert not stale, f"ACCESS names routes the app does not have: {stale}"


@pytest.fixture
def callers(client: TestClient) -> dict[str, str | None]:
    """One token of each kind (None: no token at all)."""
    admin_token = client.headers["Authorization"].removeprefix("Bearer ")
    _, user = make_token(client, "user")
    _, worker = make_token(client, "worker")
    revoked_id, revoked = make_token(client, "admin")
    assert client.delete(f"/tokens/{revoked_id}").status_code == 200
    # The admin's own token id with another secret: found by id, refused by the hash.
    forged = f"lp_{token_parts(admin_token)[0]}_{'x' * 43}"
    return {"admin": admin_token, "user": user, "worker": worker, "anonymous": None,
            "revoked": revoked, "forged": forged}


def test_access_matrix(client: TestClient, callers: dict[str, str | None]):
    """Every route × every caller: allowed (not 401/403, no 5xx), 401 or 403."""
    wrong: list[str] = []
    clients = {caller: as_caller(client, token) for caller, token in callers.items()}
    for (method, path), rule in sorted(ACCESS.items()):
        url = concrete(path)
        for caller in CALLERS:
            token = callers[caller]
            kwargs = {"json": {}} if method in ("POST", "PUT") else {}
            response = clients[caller].request(method, url, **kwargs)
            status = response.status_code
            if caller in ALLOWED[rule]:
                if status in (401, 403) or status >= 500:
                    wrong.append(f"{method} {path} as {caller}: {status}, expected allowed")
            elif token is None or caller in ("revoked", "forged"):
                if status != 401 or response.headers.get("www-authenticate") != "Bearer":
                    wrong.append(f"{method} {path} as {caller}: {status} "
                                 f"(WWW-Authenticate {response.headers.get('www-authenticate')!r})"
                                 ", expected 401 with WWW-Authenticate: Bearer")
            elif status != 403:
                wrong.append(f"{method} {path} as {caller}: {status}, expected 403")
            if status in (401, 403) and method != "HEAD":
                body = response.json()
                assert body["code"] == ("unauthorized" if status == 401 else "forbidden"), body
    assert not wrong, "\n".join(wrong)


def test_a_user_may_not_switch_projects_but_an_admin_may(client: TestClient):
    _, user = make_token(client, "user", "proj-a")
    job = client.post("/jobs", json=TINY, headers={"X-Loraplane-Project": "proj-b"}).json()
    assert job["project"] == "proj-b"  # the admin acted in proj-b
    assert client.get(f"/jobs/{job['id']}").status_code == 404  # ...not in its own project
    assert client.get(f"/jobs/{job['id']}",
                      headers={"X-Loraplane-Project": "proj-b"}).status_code == 200

    switched = client.get(f"/jobs/{job['id']}",
                          headers={**bearer(user), "X-Loraplane-Project": "proj-b"})
    body = assert_problem(switched, 403, "forbidden")
    assert job["id"] not in body["detail"]
    # The same refusal for a job that does not exist: the 403 confirms nothing.
    made_up = client.get(f"/jobs/{new_id('job')}",
                         headers={**bearer(user), "X-Loraplane-Project": "proj-b"})
    assert made_up.status_code == 403 and made_up.json()["detail"] == body["detail"]
    # Naming its own project is no switch.
    own = client.get("/jobs", headers={**bearer(user), "X-Loraplane-Project": "proj-a"})
    assert own.status_code == 200


# ---------------------------------------------------------------------------- isolation


def _same_as_unknown(caller: TestClient, method: str, template: str, real: dict[str, str],
                     fake: dict[str, str], expected: int, **kwargs) -> None:
    """`template` filled with B's ids answers exactly as when filled with ids nobody has."""
    seen = caller.request(method, template.format(**real), **kwargs)
    unknown = caller.request(method, template.format(**fake), **kwargs)
    what = f"{method} {template}"
    assert seen.status_code == expected, (what, seen.status_code, seen.text)
    assert unknown.status_code == expected, (what, unknown.status_code, unknown.text)
    if method != "HEAD":
        detail = seen.json()["detail"]
        for key, value in real.items():
            detail = detail.replace(value, fake[key])
        assert detail == unknown.json()["detail"], what
        assert seen.json()["code"] == unknown.json()["code"], what


def _swap(value: str, swaps: dict[str, str]) -> str:
    for real, fake in swaps.items():
        value = value.replace(real, fake)
    return value


def _submit_same_as_unknown(caller: TestClient, make_spec: Callable[[str], dict], real: str,
                            swaps: dict[str, str]) -> dict:
    """A spec naming B's object (`real`) is refused at submit exactly as the same spec naming
    nothing (B's ids and names swapped for ones nobody has)."""
    seen = caller.post("/jobs", json=make_spec(real))
    unknown = caller.post("/jobs", json=make_spec(_swap(real, swaps)))
    body = assert_problem(seen, 422)
    assert_problem(unknown, 422)
    assert _swap(body["detail"], swaps) == unknown.json()["detail"], (real, body)
    assert body["code"] == unknown.json()["code"]
    assert "project" not in body["detail"].lower()
    return body


def test_projects_are_isolated(client: TestClient, settings):
    """A user of project A cannot list, read, download, cancel, alias, delete or reference
    (as lora_path or training data) anything of project B; each looks as if it did not exist.
    Adapter versions are counted per project."""
    _, token_a = make_token(client, "user", "proj-a")
    _, token_b = make_token(client, "user", "proj-b")
    _, worker = make_token(client, "worker")  # workers serve every project
    user_a, user_b = as_caller(client, token_a), as_caller(client, token_b)

    # Project B: a dataset, two trained versions of "shared" (with checkpoints), an alias,
    # and a job still queued.
    dataset = upload_demo_dataset(user_b)
    first_spec = spec("shared")
    first_spec["data"] = {"train_data_paths": [dataset["id"]]}
    first = user_b.post("/jobs", json=first_spec).json()
    second = user_b.post("/jobs", json=spec("shared")).json()
    run_worker(client, settings, worker, jobs=2)
    b1 = user_b.get(f"/jobs/{first['id']}").json()
    b2 = user_b.get(f"/jobs/{second['id']}").json()
    assert b1["state"] == b2["state"] == "succeeded", (b1["error"], b2["error"])
    adapter_b1 = user_b.get(f"/adapters/{b1['adapter_id']}").json()
    adapter_b2 = user_b.get(f"/adapters/{b2['adapter_id']}").json()
    assert [adapter_b1["version"], adapter_b2["version"]] == [1, 2]
    assert user_b.put("/aliases/shared/prod", json={"adapter_id": adapter_b2["id"]}).status_code == 200
    checkpoint = user_b.get(f"/jobs/{first['id']}/checkpoints").json()["items"][0]
    assert checkpoint["lora_path"]
    queued = user_b.post("/jobs", json=spec("shared")).json()

    real = {"job": first["id"], "ck": checkpoint["id"], "ad": adapter_b1["id"],
            "ds": dataset["id"], "ck_file": checkpoint["files"][0]["name"]}
    fake = {"job": new_id("job"), "ck": new_id("ck"), "ad": new_id("ad"), "ds": new_id("ds"),
            "ck_file": real["ck_file"]}

    # --- lists show nothing of B
    for listing in ("/jobs", "/jobs?state=queued", "/adapters", "/adapters?name=shared",
                    "/datasets"):
        assert user_a.get(listing).json()["items"] == [], listing
    assert len(user_b.get("/adapters?name=shared").json()["items"]) == 2

    # --- reads and downloads: 404, as for ids nobody has
    reads = [
        "/jobs/{job}", "/jobs/{job}/events", "/jobs/{job}/checkpoints",
        "/jobs/{job}/checkpoints/{ck}", "/jobs/{job}/checkpoints/{ck}/files/{ck_file}",
        "/adapters/{ad}", "/adapters/{ad}/files/adapter_config.json",
        "/adapters/{ad}/files/adapter_model.safetensors", "/adapters/{ad}/archive",
        "/datasets/{ds}", "/datasets/{ds}/content",
    ]
    for template in reads:
        _same_as_unknown(user_a, "GET", template, real, fake, 404)
    for template in ("/jobs/{job}/checkpoints/{ck}/files/{ck_file}",
                     "/adapters/{ad}/files/adapter_config.json", "/datasets/{ds}/content"):
        _same_as_unknown(user_a, "HEAD", template, real, fake, 404)
    _same_as_unknown(user_a, "GET", "/jobs/{job}/events", real, fake, 404,
                     headers={"Accept": "text/event-stream"})
    for alias in ("prod", "latest"):
        _same_as_unknown(user_a, "GET", f"/aliases/{{name}}/{alias}", {"name": "shared"},
                         {"name": "nothing-here"}, 404)
    # ...while B reads them all
    for template in reads:
        assert user_b.get(template.format(**real)).status_code == 200, template

    # --- writes: 404 (or the 422 an unknown adapter gets), and B's objects are untouched
    _same_as_unknown(user_a, "POST", "/jobs/{job}/cancel", {"job": queued["id"]},
                     {"job": fake["job"]}, 404)
    assert user_b.get(f"/jobs/{queued['id']}").json()["state"] == "queued"
    _same_as_unknown(user_a, "DELETE", "/adapters/{ad}", real, fake, 404)
    # even the aliased version, whose deletion B would see refused with 409
    _same_as_unknown(user_a, "DELETE", "/adapters/{ad}", {"ad": adapter_b2["id"]},
                     {"ad": fake["ad"]}, 404)
    _same_as_unknown(user_a, "DELETE", "/aliases/{name}/prod", {"name": "shared"},
                     {"name": "nothing-here"}, 404)
    for alias in ("prod", "mine"):
        seen = user_a.put(f"/aliases/shared/{alias}", json={"adapter_id": adapter_b1["id"]})
        unknown = user_a.put(f"/aliases/shared/{alias}", json={"adapter_id": fake["ad"]})
        assert seen.status_code == unknown.status_code == 422, (seen.text, unknown.text)
        assert (seen.json()["detail"].replace(adapter_b1["id"], fake["ad"])
                == unknown.json()["detail"])
    assert user_b.get(f"/adapters/{adapter_b1['id']}").status_code == 200
    assert user_b.get(f"/adapters/{adapter_b2['id']}").status_code == 200
    assert user_b.get("/aliases/shared/prod").json()["adapter_id"] == adapter_b2["id"]
    assert user_b.get("/aliases/shared/mine").status_code == 404

    # --- references at submit: lora_path in every form, and training data
    def with_lora_path(value: str) -> dict:
        return spec("mine", lora_path=value, lora_rank=None)

    swaps = {adapter_b1["id"]: fake["ad"], checkpoint["id"]: fake["ck"],
             first["id"]: fake["job"], "shared": "nothing-here", dataset["id"]: fake["ds"]}
    assert adapter_b1["lora_path"].startswith("http")  # the URL forms are tried too
    assert checkpoint["lora_path"].startswith("http")
    for reference in (adapter_b1["id"], adapter_b1["lora_path"], "shared:1", "shared:2",
                      "shared@prod", "shared@latest", checkpoint["id"], checkpoint["lora_path"]):
        _submit_same_as_unknown(user_a, with_lora_path, reference, swaps)

    def with_data(value: str) -> dict:
        body = spec("mine")
        body["data"] = {"train_data_paths": [value]}
        return body

    def with_val_data(value: str) -> dict:
        body = spec("mine")
        body["data"] = {"val_data_paths": [value]}
        return body

    _submit_same_as_unknown(user_a, with_data, dataset["id"], swaps)
    _submit_same_as_unknown(user_a, with_val_data, dataset["id"], swaps)
    assert user_a.get("/jobs").json()["items"] == []  # nothing was queued by any of these

    # --- admins act in their own project too, and switch by header
    assert client.get(f"/jobs/{first['id']}").status_code == 404
    assert client.get(f"/jobs/{first['id']}",
                      headers={"X-Loraplane-Project": "proj-b"}).status_code == 200

    # --- the same name in A counts its own versions, and references resolve per project
    assert user_b.post(f"/jobs/{queued['id']}/cancel").json()["state"] == "cancelled"
    mine = user_a.post("/jobs", json=spec("shared")).json()
    run_worker(client, settings, worker)
    done = user_a.get(f"/jobs/{mine['id']}").json()
    assert done["state"] == "succeeded", done["error"]
    adapter_a = user_a.get(f"/adapters/{done['adapter_id']}").json()
    assert adapter_a["name"] == "shared" and adapter_a["version"] == 1
    assert [a["version"] for a in user_b.get("/adapters?name=shared").json()["items"]] == [2, 1]
    assert user_a.get("/aliases/shared/latest").json()["adapter_id"] == adapter_a["id"]
    assert user_b.get("/aliases/shared/latest").json()["adapter_id"] == adapter_b2["id"]
    resumed_a = user_a.post("/jobs", json=with_lora_path("shared:1"))
    resumed_b = user_b.post("/jobs", json=with_lora_path("shared:1"))
    assert resumed_a.status_code == resumed_b.status_code == 201, (resumed_a.text, resumed_b.text)
    assert resumed_a.json()["parent_adapter_id"] == adapter_a["id"]
    assert resumed_b.json()["parent_adapter_id"] == adapter_b1["id"]


def test_idempotency_keys_are_per_project(client: TestClient):
    """The same Idempotency-Key in two projects makes two jobs; neither project learns of the
    other's."""
    _, token_a = make_token(client, "user", "proj-a")
    _, token_b = make_token(client, "user", "proj-b")
    key = {"Idempotency-Key": "nightly-2024-06-01"}
    in_b = client.post("/jobs", json=TINY, headers={**bearer(token_b), **key})
    in_a = client.post("/jobs", json=TINY, headers={**bearer(token_a), **key})
    assert in_b.status_code == in_a.status_code == 201, (in_b.text, in_a.text)
    assert in_a.json()["id"] != in_b.json()["id"]
    again = client.post("/jobs", json=TINY, headers={**bearer(token_a), **key})
    assert again.status_code == 201 and again.json()["id"] == in_a.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    other_body = client.post("/jobs", json=spec("other"), headers={**bearer(token_a), **key})
    assert other_body.status_code == 409 and in_b.json()["id"] not in other_body.text


# ---------------------------------------------------------------------------- tokens


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


# ---------------------------------------------------------------------------- worker tokens


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
        body = spec(name)
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
