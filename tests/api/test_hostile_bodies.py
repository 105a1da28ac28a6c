"""Hostile request bodies and parameters, on SQLite and PostgreSQL: each is refused with a clear
4xx and leaves nothing behind (no job or dataset row; no blob or temp file for a refused
dataset upload).

Specs (size, YAML alias bombs, nesting, code-running YAML tags, environment lookups),
datasets (size, lines that are not JSON objects), list cursors and event ids out of range.
Files a worker offers: test_hostile_uploads; references in a spec: test_hostile_references.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.factories import refused
from tests.specs import tiny_spec

TINY = tiny_spec()

MAX_SPEC_BYTES = 16 * 1024
MAX_DATASET_BYTES = 4096


@pytest.fixture
def settings(settings):
    """The suite's settings with small limits."""
    settings.max_spec_bytes = MAX_SPEC_BYTES
    settings.max_dataset_bytes = MAX_DATASET_BYTES
    return settings


def blobs(settings) -> list[Path]:
    """Every file of the artifact store (blobs and temp files)."""
    return sorted(p for p in settings.artifacts_dir.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------- specs


def submit(client: TestClient, body: bytes | str, media: str = "application/yaml",
           **headers: str) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return client.post("/jobs", content=content, headers={"content-type": media, **headers})


def test_spec_over_the_size_limit_is_refused(client: TestClient):
    big = json.dumps({**TINY, "padding": "x" * MAX_SPEC_BYTES}).encode()
    refused(submit(client, big, "application/json"), 413, "limit")

    def chunked():  # no Content-Length: the limit holds while streaming
        for _ in range(MAX_SPEC_BYTES // 1024 + 2):
            yield b" " * 1024

    refused(client.post("/jobs", content=chunked(), headers={"content-type": "application/json"}),
            413, "limit")
    assert client.get("/jobs").json()["items"] == []


BILLION_LAUGHS = """
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
actor: {model: {model_path: demo-tiny-llama}}
"""


HOSTILE_SPECS = {
    "alias-bomb": (BILLION_LAUGHS, "application/yaml", ["alias bomb"]),
    "deep-yaml": ("a: " + "[" * 40 + "]" * 40, "application/yaml", ["nests deeper"]),
    "very-deep-yaml": ("a: " + "[" * 5000 + "]" * 5000, "text/yaml", ["nests deeper"]),
    "deep-json": ('{"a": ' + "[" * 40 + "]" * 40 + "}", "application/json", ["nests deeper"]),
    "very-deep-json": ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "application/json",
                       ["nests deeper"]),
    "python-apply-tag": ("x: !!python/object/apply:os.system ['touch /tmp/loraplane-pwned']\n",
                         "application/yaml", ["yaml"]),
    "python-name-tag": ("x: !!python/name:os.system\n", "application/x-yaml", ["yaml"]),
    "env-interpolation": ("actor: {model: {model_path: '${oc.env:LORAPLANE_ADMIN_TOKEN}'}}\n",
                          "application/yaml", ["interpolation"]),
    "nan": ('{"actor": {"model": {"model_path": "m"}}, "x": NaN}', "application/json", ["nan"]),
    "duplicate-json": ('{"actor": {}, "actor": {}}', "application/json", ["twice"]),
    "duplicate-yaml": ("actor: 1\nactor: 2\n", "application/yaml", ["twice"]),
    "not-utf8": (b"actor: \xff\xfe\n", "application/yaml", ["utf-8"]),
    "not-a-mapping": ("- a list\n- not a mapping\n", "application/yaml", ["mapping"]),
}


def test_hostile_spec_documents_are_refused(client: TestClient, monkeypatch):
    monkeypatch.setenv("LORAPLANE_ADMIN_TOKEN", "lp_tok_secret_never_echoed_0000000000")
    for case, (body, media, words) in HOSTILE_SPECS.items():
        response = submit(client, body, media)
        problem = refused(response, 422, *words)
        assert "never_echoed" not in response.text, case
        assert len(problem["detail"]) < 2000, case  # a message, not an echo of the document
    assert not os.path.exists("/tmp/loraplane-pwned")
    assert client.get("/jobs").json()["items"] == []


def test_spec_with_an_unaccepted_media_type_is_refused(client: TestClient):
    refused(submit(client, json.dumps(TINY), "application/x-python-pickle"), 415,
            "application/json")
    refused(submit(client, pickle.dumps(TINY), "application/octet-stream"), 415)
    assert client.get("/jobs").json()["items"] == []


# ---------------------------------------------------------------------------- datasets


def upload(client: TestClient, data: bytes | Any, media: str = "application/jsonl"):
    return client.post("/datasets", content=data, headers={"content-type": media})


def test_dataset_over_the_size_limit_is_refused(client: TestClient, settings):
    line = b'{"prompt": "p", "answer": "a"}\n'
    too_big = line * (MAX_DATASET_BYTES // len(line) + 1)
    assert upload(client, line * 10).status_code == 201  # within the limit: fine
    before = blobs(settings)
    refused(upload(client, too_big), 413, str(MAX_DATASET_BYTES))

    def chunked():  # no Content-Length: counted while streaming
        for _ in range(len(too_big) // len(line) + 1):
            yield line

    body = refused(upload(client, chunked()), 413, str(MAX_DATASET_BYTES))
    assert body["code"] == "dataset_too_large"
    assert len(client.get("/datasets").json()["items"]) == 1
    assert blobs(settings) == before  # no blob, no temp file left


BAD_DATASETS = {
    "not-json": (b'{"prompt": "p", "answer": "a"}\nnot json at all\n', ["line 2", "not valid json"]),
    "array": (b'{"prompt": "p", "answer": "a"}\n[1, 2]\n', ["line 2", "array"]),
    "string": (b'"just a string"\n', ["line 1", "string"]),
    "nan": (b'{"prompt": NaN, "answer": "a"}\n', ["line 1", "nan"]),
    "not-utf8": (b'{"prompt": "\xff", "answer": "a"}\n', ["line 1", "utf-8"]),
    "pickle": (pickle.dumps([{"prompt": "p", "answer": "a"}]), ["line 1"]),
    "empty": (b"\n\n  \n", ["no rows"]),
}


def test_dataset_lines_that_are_not_json_objects_are_refused(client: TestClient, settings):
    before = blobs(settings)
    for case, (data, words) in BAD_DATASETS.items():
        body = refused(upload(client, data), 422, *words)
        assert "nothing was stored" in body["detail"] or case == "empty", case
    assert client.get("/datasets").json()["items"] == []
    assert blobs(settings) == before


# ---------------------------------------------------------------------------- cursors


def test_out_of_range_cursors_and_event_ids_are_422_not_500(client: TestClient):
    from service.paging import encode_cursor

    job = client.post("/jobs", json=TINY).json()
    events = f"/jobs/{job['id']}/events"
    for value in (10**30, 2**63, -(2**63) - 1, 2**31, True, False, 1e308, None, [], {}):
        cursor = encode_cursor(value)
        for url in (events, "/jobs", f"/jobs/{job['id']}/checkpoints", "/adapters", "/datasets",
                    "/tokens"):
            response = client.get(url, params={"cursor": cursor})
            if url == events and value == 2**31:
                # An event id within BIGINT past the last event: a valid cursor, an empty page.
                assert response.status_code == 200, response.text
                assert response.json()["items"] == []
                continue
            refused(response, 422, "cursor")
            assert response.json()["code"] == "invalid_cursor", (url, value)
    for event_id in ("9" * 30, str(2**63)):
        response = client.get(f"/jobs/{job['id']}/events", headers={"Last-Event-ID": event_id})
        refused(response, 422, "Last-Event-ID")


