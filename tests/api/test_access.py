"""Access control, on SQLite and PostgreSQL: every route of the app (enumerated from
`app.routes`, so a new endpoint cannot be forgotten) × every kind of caller → allowed, 401 or
403; and who may act in which project. Isolation and tokens: test_isolation, test_tokens."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from service.ids import new_id
from tests.factories import as_caller, assert_problem, bearer, make_token, token_parts
from tests.specs import tiny_spec

TINY = tiny_spec()


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
    ("GET", "/ui"): PUBLIC,  # the dashboard's static pages; every API call it makes is gated
    ("HEAD", "/ui"): PUBLIC,
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
    ("POST", "/adapters"): MEMBER,
    ("GET", "/adapters/{adapter_id}"): MEMBER,
    ("PATCH", "/adapters/{adapter_id}"): MEMBER,
    ("DELETE", "/adapters/{adapter_id}"): MEMBER,
    ("GET", "/export"): MEMBER,
    ("POST", "/import"): MEMBER,
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
    ("POST", "/worker/jobs/{job_id}/result"): WORKER,
    ("POST", "/evaluations"): MEMBER,
    ("GET", "/evaluations/{evaluation_id}"): MEMBER,
    ("POST", "/samples"): MEMBER,
    ("GET", "/samples/{sample_id}"): MEMBER,
    ("POST", "/webhooks"): MEMBER,
    ("GET", "/webhooks"): MEMBER,
    ("GET", "/webhooks/{webhook_id}"): MEMBER,
    ("DELETE", "/webhooks/{webhook_id}"): MEMBER,
    ("GET", "/webhooks/{webhook_id}/deliveries"): MEMBER,
    ("GET", "/webhooks/{webhook_id}/deliveries/{delivery_id}"): MEMBER,
    ("POST", "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): MEMBER,
}

# Made-up values for path parameters: the matrix is about access, not about objects.
PATH_VALUES = {
    "job_id": "job_" + "0" * 26,
    "evaluation_id": "job_" + "0" * 26,
    "sample_id": "job_" + "0" * 26,
    "checkpoint_id": "ck_" + "0" * 26,
    "adapter_id": "ad_" + "0" * 26,
    "dataset_id": "ds_" + "0" * 26,
    "token_id": "tok_" + "0" * 26,
    "sha256": "0" * 64,
    "name": "adapter_config.json",
    "alias": "prod",
    "webhook_id": "wh_" + "0" * 26,
    "delivery_id": "msg_" + "0" * 26,
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


