"""Schemathesis against the service's own OpenAPI document: no 5xx, no undocumented status
code or content type, no response body that breaks its schema.

- In-process (ASGI), authenticated with an admin token, on SQLite only: the engines share
  every code path the fuzzer reaches except the SQL dialect, which the rest of the suite
  covers on both; fuzzing both would double the run for little.
- One pytest test per operation, parametrized from the app's own document, so a new endpoint
  is fuzzed without touching this file. (Schemathesis' `@schema.parametrize()` is not used:
  its pytest plugin rewrites node ids through an attribute pytest 9 no longer has.)
- Bounded and deterministic: MAX_EXAMPLES per operation, derandomized, no example database,
  no shrinking; schema-conforming and schema-violating cases, with random ids and with the
  ids of real objects seeded first (and the live lease of a held job for the worker
  protocol), so the fuzzer gets past the 404s. The whole run takes about 15 s on two cores.
- Checks: not_a_server_error, status_code_conformance, content_type_conformance,
  response_schema_conformance. Not run, on purpose: positive_data_acceptance (a schema cannot
  say which cursors this service issued, which ids exist, or what a valid spec or JSONL body
  is, so "schema-valid request rejected" fires on every such 422) and
  negative_data_rejection (the app ignores unknown query parameters, as HTTP APIs do).
"""

from __future__ import annotations

import hashlib
import json
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python.asgi import shutdown_lifespans

from service.auth import new_token_value
from service.settings import Settings

MAX_EXAMPLES = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
# Tar bodies (adapter and registry imports) are bytes on the wire, like octet-stream ones.
schemathesis.serializer.alias("application/x-tar", "application/octet-stream")


def _operations() -> list[tuple[str, str]]:
    """Every (method, path) of the app's OpenAPI document (built without a database)."""
    from api.app import create_app

    with tempfile.TemporaryDirectory() as data:
        document = create_app(Settings(data_dir=Path(data)), migrate=False).openapi()
    return sorted(
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    )


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    """A migrated app on a fresh SQLite file, with a known admin token."""
    from api.app import create_app

    data = tmp_path_factory.mktemp("fuzz")
    token = new_token_value()
    settings = Settings(
        data_dir=data,
        database_url=f"sqlite:///{data / 'loraplane.db'}",
        admin_token=token,
        claim_wait_seconds=0,  # a fuzzed claim must not long-poll
        queue_poll_seconds=0.05,
    )
    yield create_app(settings), token
    shutdown_lifespans()  # schemathesis started the app's lifespan; stop its lease sweeper


@pytest.fixture(scope="module")
def api_schema(fuzzed_app: tuple[object, str]):
    app, _ = fuzzed_app
    return schemathesis.openapi.from_asgi("/openapi.json", app)  # starts the app (migrates)


@pytest.fixture(scope="module")
def known(api_schema, fuzzed_app: tuple[object, str]) -> dict[str, dict[str, str]]:
    """Real objects for the fuzzer to reach past the 404s: a dataset, a finished job with a
    checkpoint and a registered adapter under an alias, a user token, and a running job whose
    lease the worker operations are sent with. Returns path parameters and headers."""
    app, token = fuzzed_app
    client = TestClient(app, base_url="http://testserver", headers=_bearer(token))
    dataset = client.post("/datasets", content=b'{"prompt": "p", "answer": "a"}\n' * 4,
                          headers={"content-type": "application/jsonl"}).json()
    spec = {"actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": True,
                                "lora_rank": 4}},
            "data": {"train_data_paths": [dataset["id"]]}, "runner": {"experiment_name": "tiny"}}
    finished = client.post("/jobs", json=spec).json()
    lease = _claim(client, finished["id"])
    config = _upload(client, finished["id"], lease, "adapter_config.json",
                     json.dumps({"r": 4}).encode())
    weights = _upload(client, finished["id"], lease, "adapter_model.safetensors", _safetensors())
    checkpoint = client.post(f"/worker/jobs/{finished['id']}/checkpoints", headers=lease,
                             json={"step": 2, "files": [config, weights]}).json()
    done = client.post(f"/worker/jobs/{finished['id']}/complete", headers=lease,
                       json={"kind": "lora", "files": [config, weights]}).json()
    client.put("/aliases/tiny/prod", json={"adapter_id": done["adapter_id"]})
    user = client.post("/tokens", json={"role": "user", "name": "fuzzed"}).json()
    running = client.post("/jobs", json=spec).json()
    held = _claim(client, running["id"])
    return {
        "path": {"job_id": finished["id"], "checkpoint_id": checkpoint["id"],
                 "adapter_id": done["adapter_id"], "dataset_id": dataset["id"],
                 "name": "tiny", "alias": "prod", "token_id": user["id"],
                 "sha256": dataset["sha256"]},
        "worker_path": {"job_id": running["id"], "sha256": dataset["sha256"]},
        "worker_headers": held,
    }


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claim(client: TestClient, job_id: str) -> dict[str, str]:
    claim = client.post("/worker/claim", json={"worker_id": "fuzz-seed"}).json()
    assert claim["job"]["id"] == job_id
    return {"X-Loraplane-Lease": claim["lease_id"]}


def _upload(client: TestClient, job_id: str, lease: dict[str, str], name: str,
            data: bytes) -> dict:
    sha = hashlib.sha256(data).hexdigest()
    stored = client.put(f"/worker/jobs/{job_id}/blobs/{sha}", content=data, headers=lease)
    assert stored.status_code == 201, stored.text
    return {"name": name, "sha256": sha, "size": len(data)}


def _safetensors() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + struct.pack("<f", 1.0)


def _strategies(operation, known: dict[str, dict[str, str]]):
    """Random cases, cases that name the real objects, and (for the worker protocol) cases
    sent under the live lease; each both schema-conforming and schema-violating."""
    names = {p.name for p in operation.path_parameters}
    worker = operation.path.startswith("/worker/")
    fixed = {k: v for k, v in known["worker_path" if worker else "path"].items() if k in names}
    headers = known["worker_headers"] if worker else None
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    return hypothesis.strategies.one_of(
        *(operation.as_strategy(mode) for mode in modes),
        *(operation.as_strategy(mode, path_parameters=fixed, headers=headers) for mode in modes
          if fixed or headers),
    )


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms_to_its_schema(api_schema, fuzzed_app, known, method: str,
                                          path: str):
    _, token = fuzzed_app
    operation = api_schema[path][method]
    auth = _bearer(token)

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=_strategies(operation, known))
    def fuzz(case) -> None:
        case.call_and_validate(headers=auth, checks=CHECKS)

    fuzz()
