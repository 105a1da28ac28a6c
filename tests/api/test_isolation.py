"""Project isolation, on SQLite and PostgreSQL: a user of project A can neither see nor touch nor
reference anything of project B, and B's objects are indistinguishable from objects that do not
exist (the same status and the same message, ids aside). B's objects are made by a real job
run by a real in-process worker."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from service.ids import new_id
from tests.factories import (
    as_caller,
    assert_problem,
    bearer,
    make_token,
    run_worker,
    upload_demo_dataset,
)
from tests.specs import tiny_spec

TINY = tiny_spec()


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
    first_spec = tiny_spec("shared")
    first_spec["data"] = {"train_data_paths": [dataset["id"]]}
    first = user_b.post("/jobs", json=first_spec).json()
    second = user_b.post("/jobs", json=tiny_spec("shared")).json()
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
    queued = user_b.post("/jobs", json=tiny_spec("shared")).json()

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
        return tiny_spec("mine", lora_path=value, lora_rank=None)

    swaps = {adapter_b1["id"]: fake["ad"], checkpoint["id"]: fake["ck"],
             first["id"]: fake["job"], "shared": "nothing-here", dataset["id"]: fake["ds"]}
    assert adapter_b1["lora_path"].startswith("http")  # the URL forms are tried too
    assert checkpoint["lora_path"].startswith("http")
    for reference in (adapter_b1["id"], adapter_b1["lora_path"], "shared:1", "shared:2",
                      "shared@prod", "shared@latest", checkpoint["id"], checkpoint["lora_path"]):
        _submit_same_as_unknown(user_a, with_lora_path, reference, swaps)

    def with_data(value: str) -> dict:
        body = tiny_spec("mine")
        body["data"] = {"train_data_paths": [value]}
        return body

    def with_val_data(value: str) -> dict:
        body = tiny_spec("mine")
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
    mine = user_a.post("/jobs", json=tiny_spec("shared")).json()
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
    other_body = client.post("/jobs", json=tiny_spec("other"), headers={**bearer(token_a), **key})
    assert other_body.status_code == 409 and in_b.json()["id"] not in other_body.text
