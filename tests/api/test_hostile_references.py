"""Hostile references in a spec, on SQLite and PostgreSQL: worker-local `lora_path` folders and
data paths outside the allowed roots are refused at submit, and a `lora_path` URL naming
another host never makes the worker contact it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import as_caller, make_token, refused, run_worker
from tests.specs import tiny_spec

TINY = tiny_spec()


@pytest.fixture
def settings(settings, tmp_path: Path):
    """The suite's settings with one allowed worker-local adapter root."""
    settings.lora_path_roots = [tmp_path / "roots" / "adapters"]
    return settings


def test_local_lora_paths_outside_the_allowed_roots_are_refused(client: TestClient, settings,
                                                                tmp_path: Path):
    root = settings.lora_path_roots[0]
    (root / "good").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)  # a folder under the root that leads out of it
    (root / "good" / "link").symlink_to(outside)
    sibling = Path(f"{root}-evil")
    sibling.mkdir()

    for path, words in [
        ("/etc", ["outside the allowed roots"]),
        (str(outside), ["outside the allowed roots"]),
        (f"{root}/../../outside", ["`..`"]),
        (f"{root}/good/../../../outside", ["`..`"]),
        (str(root / "escape"), ["outside the allowed roots"]),
        (str(root / "good" / "link"), ["outside the allowed roots"]),
        (str(sibling), ["outside the allowed roots"]),
        ("//evil.example/adapters/x", ["outside the allowed roots"]),
        ("relative/folder", ["not a form"]),
        (" /etc", ["spaces"]),
        ("file:///etc/passwd", ["http"]),
        ("http://169.254.169.254/latest/meta-data/", ["adapters"]),
        ("http://evil.example/adapters/ad_x?y=1", ["query"]),
    ]:
        response = client.post("/jobs", json=tiny_spec("local", lora_path=path))
        body = refused(response, 422, *words)
        assert body["code"] == "invalid_lora_path", body
    assert client.get("/jobs").json()["items"] == []
    accepted = client.post("/jobs", json=tiny_spec("local", lora_path=str(root / "good")))
    assert accepted.status_code == 201, accepted.text

    settings.lora_path_roots = []  # the default: no worker-local folder at all
    refused(client.post("/jobs", json=tiny_spec("local", lora_path=str(root / "good"))), 422,
            "not allowed")


def _absolute_urls(value: Any, where: str = "") -> list[tuple[str, str]]:
    """(json path, string) of every string in `value` that is an absolute or
    scheme-relative URL."""
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _absolute_urls(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _absolute_urls(item, f"{where}[{index}]")
    elif isinstance(value, str) and ("://" in value or value.startswith("//")):
        found.append((where, value))
    return found


def _input_urls(claim: dict) -> list[str]:
    files = [*(claim["lora_source"] or {}).get("files", []),
             *((claim["checkpoint"] or {}).get("files", [])), *claim["datasets"].values()]
    return [f["url"] for f in files]


def test_lora_path_urls_never_make_the_worker_contact_another_host(client: TestClient,
                                                                   settings):
    _, worker = make_token(client, "worker")
    parent_job = client.post("/jobs", json=TINY).json()
    run_worker(client, settings, worker)
    parent_id = client.get(f"/jobs/{parent_job['id']}").json()["adapter_id"]
    parent = client.get(f"/adapters/{parent_id}").json()
    checkpoint = client.get(f"/jobs/{parent_job['id']}/checkpoints").json()["items"][-1]
    dataset = client.post("/datasets", content=b'{"prompt": "p", "answer": "a"}\n' * 8,
                          headers={"content-type": "application/jsonl"}).json()

    foreign = [
        f"http://evil.example:8080/adapters/{parent['id']}",
        f"https://user:pw@169.254.169.254/adapters/{parent['id']}",
        checkpoint["lora_path"].replace("http://testserver", "http://evil.example"),
    ]
    worker_http = as_caller(client, worker)
    for lora_path in foreign:
        body = tiny_spec("child", lora_path=lora_path, lora_rank=None)
        body["data"] = {"train_data_paths": [dataset["id"]]}
        job = client.post("/jobs", json=body)
        assert job.status_code == 201, job.text
        claim = worker_http.post("/worker/claim", json={"worker_id": "inspector"}).json()
        assert claim["job"]["id"] == job.json()["id"]
        urls = _input_urls(claim)
        assert len(urls) >= 3  # the adapter's (or checkpoint's) two files and the dataset
        for url in urls:
            assert url.startswith(f"/worker/jobs/{claim['job']['id']}/inputs/"), url
        # The only absolute URL anywhere in the claim is the user's own lora_path, echoed as
        # data; nothing a worker fetches.
        echoed = {path for path, value in _absolute_urls(claim) if value == lora_path}
        assert echoed == {".job.spec.actor.model.lora_path", ".lora_source.lora_path"}
        assert [u for u in _absolute_urls(claim) if u[1] != lora_path] == []
        worker_http.post(f"/worker/jobs/{claim['job']['id']}/cancelled",
                         headers={"X-Loraplane-Lease": claim["lease_id"]})
        client.post(f"/jobs/{claim['job']['id']}/cancel")

    # A real worker runs such a job end to end and talks to its server only.
    hosts: list[str] = []
    job = client.post("/jobs", json=tiny_spec("child", lora_path=foreign[0], lora_rank=None)).json()
    assert job["parent_adapter_id"] == parent["id"]
    run_worker(client, settings, worker, on_request=lambda request: hosts.append(request.url.host))
    done = client.get(f"/jobs/{job['id']}").json()
    assert done["state"] == "succeeded", done["error"]
    assert hosts and set(hosts) == {"testserver"}


def test_local_data_paths_outside_allowed_roots_are_refused(client: TestClient, settings):
    body = tiny_spec("local-data")
    body["data"] = {"train_data_paths": [str(settings.data_dir / "admin.token")]}
    refused(client.post("/jobs", json=body), 422)
