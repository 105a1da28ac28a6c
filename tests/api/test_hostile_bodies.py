"""Hostile input, on SQLite and PostgreSQL: each is refused with a clear 4xx and leaves
nothing behind (no job, dataset, adapter or checkpoint row; no blob or temp file for a
refused dataset upload).

Specs (size, YAML alias bombs, nesting, code-running YAML tags, environment lookups),
datasets (size, lines that are not JSON objects), files a worker offers as a result or a
checkpoint (pickles, zips, bad names, bad adapter_config.json), archive names, worker-local
`lora_path` folders outside the allowed roots, and `lora_path` URLs naming another host.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.downloads import content_disposition, safe_archive_name
from tests.api.test_access import TINY, as_caller, assert_problem, make_token, run_worker, spec

MAX_SPEC_BYTES = 16 * 1024
MAX_DATASET_BYTES = 4096


@pytest.fixture
def settings(settings, tmp_path: Path):
    """The suite's settings with small limits and one allowed worker-local adapter root."""
    settings.max_spec_bytes = MAX_SPEC_BYTES
    settings.max_dataset_bytes = MAX_DATASET_BYTES
    settings.lora_path_roots = [tmp_path / "roots" / "adapters"]
    return settings


def blobs(settings) -> list[Path]:
    """Every file of the artifact store (blobs and temp files)."""
    return sorted(p for p in settings.artifacts_dir.rglob("*") if p.is_file())


def refused(response: httpx.Response, status: int, *words: str) -> dict:
    """A problem+json refusal whose detail says what was wrong."""
    body = assert_problem(response, status)
    for word in words:
        assert word.lower() in body["detail"].lower(), (word, body["detail"])
    return body


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


# ---------------------------------------------------------------------------- worker uploads


def safetensors_bytes() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + struct.pack("<2f", 1.0, 2.0)


def torch_save_like_zip() -> bytes:
    """What `torch.save` writes: a zip holding a pickle."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    return buffer.getvalue()


CONFIG = json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 4,
                     "target_modules": ["q_proj"]}).encode()


class Holder:
    """A job claimed by hand, for offering files as its worker would."""

    def __init__(self, client: TestClient, job: dict):
        self.client, self.job = client, job
        claim = client.post("/worker/claim", json={"worker_id": "hostile"})
        assert claim.status_code == 200 and claim.json()["job"]["id"] == job["id"]
        self.lease = {"X-Loraplane-Lease": claim.json()["lease_id"]}

    def put(self, name: str, data: bytes) -> dict:
        sha = hashlib.sha256(data).hexdigest()
        stored = self.client.put(f"/worker/jobs/{self.job['id']}/blobs/{sha}", content=data,
                                 headers=self.lease)
        assert stored.status_code == 201, stored.text
        return {"name": name, "sha256": sha, "size": len(data)}

    def complete(self, files: list[dict], **extra) -> httpx.Response:
        return self.client.post(f"/worker/jobs/{self.job['id']}/complete", headers=self.lease,
                                json={"kind": "lora", "files": files, **extra})

    def checkpoint(self, files: list[dict]) -> httpx.Response:
        return self.client.post(f"/worker/jobs/{self.job['id']}/checkpoints", headers=self.lease,
                                json={"step": 2, "files": files})


@pytest.fixture
def holder(client: TestClient) -> Holder:
    return Holder(client, client.post("/jobs", json=TINY).json())


def _assert_nothing_registered(client: TestClient, holder: Holder) -> None:
    assert client.get("/adapters").json()["items"] == []
    assert client.get(f"/jobs/{holder.job['id']}/checkpoints").json()["items"] == []
    assert client.get(f"/jobs/{holder.job['id']}").json()["state"] == "running"


PICKLES = {
    f"pickle-protocol-{p}": pickle.dumps({"lora_A": [0.0] * 8}, protocol=p) for p in (2, 3, 4, 5)
}
PICKLES["torch-save-zip"] = torch_save_like_zip()


def test_pickled_weights_are_refused_as_result_and_checkpoint(client: TestClient,
                                                              holder: Holder):
    config = holder.put("adapter_config.json", CONFIG)
    for bad in PICKLES.values():
        # under a pickle name, and under a safetensors name
        for name, word in (("adapter_model.bin", "pickle"), ("adapter_model.pt", "pickle"),
                           ("adapter_model.safetensors", "not a safetensors")):
            weights = holder.put(name, bad)
            refused(holder.complete([config, weights]), 422, word)
            refused(holder.checkpoint([config, weights, holder.put("trainer_state.json", b"{}")]),
                    422, word)
        # ...and as any other checkpoint file: a pickle or a zip is never stored as one
        for name in ("optimizer.pt", "rng_state.pth", "state.pkl", "extra.ckpt"):
            refused(holder.checkpoint([holder.put(name, bad)]), 422, "pickle")
        refused(holder.checkpoint([holder.put("trainer_state.json", bad)]), 422)
    _assert_nothing_registered(client, holder)


BAD_CONFIGS = {
    "array": (b"[1, 2, 3]", ["not a JSON object"], {}),
    "string": (b'"r: 4"', ["not a JSON object"], {}),
    "not-json": (b"{not json", ["not valid"], {}),
    "pickle": (pickle.dumps({"r": 4}, protocol=4), ["pickle"], {}),
    "no-r": (json.dumps({"peft_type": "LORA", "lora_alpha": 4}).encode(), ["`r`"], {}),
    "no-r-rank-given": (json.dumps({"peft_type": "LORA", "lora_alpha": 4}).encode(), ["`r`"],
                        {"rank": 4}),
    "r-zero": (json.dumps({"r": 0}).encode(), ["`r`"], {}),
    "r-bool": (json.dumps({"r": True}).encode(), ["`r`"], {}),
    "r-string": (json.dumps({"r": "4"}).encode(), ["`r`"], {"rank": 4}),
    "r-mismatch": (json.dumps({"r": 8}).encode(), ["disagrees"], {"rank": 4}),
}


def test_bad_adapter_config_is_refused(client: TestClient, holder: Holder):
    weights = holder.put("adapter_model.safetensors", safetensors_bytes())
    for case, (config, words, extra) in BAD_CONFIGS.items():
        bad = holder.put("adapter_config.json", config)
        refused(holder.complete([bad, weights], **extra), 422, *words)
        if case == "r-mismatch":  # a checkpoint announces no rank of its own
            continue
        refused(holder.checkpoint([bad, weights]), 422)
        refused(holder.checkpoint([{**bad, "name": f"adapter/{bad['name']}"},
                                   {**weights, "name": f"adapter/{weights['name']}"}]), 422)
    _assert_nothing_registered(client, holder)


UNSAFE_NAMES = ["../adapter_model.safetensors", "a/../../etc/passwd", "/etc/passwd",
                "/adapter_config.json", "C:/Windows/win.ini", "adapter\\model.safetensors",
                "..\\..\\evil", "adapter\x00.json", "adapter\n.json", "./adapter_config.json",
                "a//b.json", ".", "..", "x" * 256]


def test_unsafe_file_names_are_refused(client: TestClient, holder: Holder):
    good = holder.put("adapter_config.json", CONFIG)
    weights = holder.put("adapter_model.safetensors", safetensors_bytes())
    for name in UNSAFE_NAMES:
        response = holder.complete([good, {**weights, "name": name}])
        assert response.status_code == 422, (name, response.text)
        response = holder.checkpoint([good, weights, {**weights, "name": name}])
        assert response.status_code == 422, (name, response.text)
    _assert_nothing_registered(client, holder)


def test_a_sane_result_is_accepted_after_the_refusals(client: TestClient, holder: Holder):
    """The refusals above are about the files: the same job registers good ones."""
    config = holder.put("adapter_config.json", CONFIG)
    weights = holder.put("adapter_model.safetensors", safetensors_bytes())
    refused(holder.complete([config, holder.put("adapter_model.bin", PICKLES["pickle-protocol-4"])]),
            422)
    assert holder.checkpoint([config, weights]).status_code == 201
    done = holder.complete([config, weights])
    assert done.status_code == 200 and done.json()["state"] == "succeeded", done.text
    (adapter,) = client.get("/adapters").json()["items"]
    assert adapter["rank"] == 4
    assert sorted(f["name"] for f in adapter["files"]) == ["adapter_config.json",
                                                          "adapter_model.safetensors"]


# ---------------------------------------------------------------------------- archive names


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "etc/passwd"),
        ("/abs/file.json", "abs/file.json"),
        ("C:\\Windows\\win.ini", "Windows/win.ini"),
        ("a/./b/../c", "a/b/c"),
        ("bad\x00na\nme.json", "badname.json"),
        ("..\\..\\x", "x"),
    ],
)
def test_archive_member_names_are_sanitised(name: str, safe: str):
    assert safe_archive_name(name) == safe


@pytest.mark.parametrize("name", ["../..", "/", "\\", "./.", "\x00"])
def test_archive_member_names_that_sanitise_to_nothing_are_refused(name: str):
    from service.errors import InvalidRequest

    with pytest.raises(InvalidRequest):
        safe_archive_name(name)


@pytest.mark.parametrize("name", ['../../evil".tar', "a\r\nSet-Cookie: x=1.tar", "/etc/passwd",
                                  "..\\..\\boot.ini", "ünï\x7fcode.tar"])
def test_download_file_names_are_sanitised(name: str):
    header = content_disposition(name)
    assert header.startswith('attachment; filename="')
    assert "\r" not in header and "\n" not in header and "/" not in header.split(";")[1]
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback and ".." != fallback and "\\" not in fallback and fallback.isascii()


def test_a_downloaded_archive_is_a_flat_safe_folder(client: TestClient, holder: Holder):
    holder.complete([holder.put("adapter_config.json", CONFIG),
                     holder.put("adapter_model.safetensors", safetensors_bytes())])
    (adapter,) = client.get("/adapters").json()["items"]
    archive = client.get(f"/adapters/{adapter['id']}/archive")
    assert archive.status_code == 200
    assert archive.headers["content-disposition"] == 'attachment; filename="tiny-v1.tar"'
    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        members = tar.getmembers()
        assert sorted(m.name for m in members) == ["adapter_config.json",
                                                   "adapter_model.safetensors"]
        assert all(m.isfile() and m.mode == 0o644 for m in members)


# ---------------------------------------------------------------------------- lora_path


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
        response = client.post("/jobs", json=spec("local", lora_path=path))
        body = refused(response, 422, *words)
        assert body["code"] == "invalid_lora_path", body
    assert client.get("/jobs").json()["items"] == []
    accepted = client.post("/jobs", json=spec("local", lora_path=str(root / "good")))
    assert accepted.status_code == 201, accepted.text

    settings.lora_path_roots = []  # the default: no worker-local folder at all
    refused(client.post("/jobs", json=spec("local", lora_path=str(root / "good"))), 422,
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
        body = spec("child", lora_path=lora_path, lora_rank=None)
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
    job = client.post("/jobs", json=spec("child", lora_path=foreign[0], lora_rank=None)).json()
    assert job["parent_adapter_id"] == parent["id"]
    run_worker(client, settings, worker, on_request=lambda request: hosts.append(request.url.host))
    done = client.get(f"/jobs/{job['id']}").json()
    assert done["state"] == "succeeded", done["error"]
    assert hosts and set(hosts) == {"testserver"}


def test_local_data_paths_outside_allowed_roots_are_refused(client: TestClient, settings):
    body = spec("local-data")
    body["data"] = {"train_data_paths": [str(settings.data_dir / "admin.token")]}
    refused(client.post("/jobs", json=body), 422)


# ---------------------------------------------------------------------------- numbers


def test_out_of_range_cursors_and_event_ids_are_422_not_500(client: TestClient):
    from service.paging import encode_cursor

    job = client.post("/jobs", json=TINY).json()
    for value in (10**30, 2**63, -(2**63) - 1, 2**31, True, False, 1e308, None, [], {}):
        cursor = encode_cursor(value)
        for url in (f"/jobs/{job['id']}/events", "/jobs", f"/jobs/{job['id']}/checkpoints",
                    "/adapters", "/datasets", "/tokens"):
            response = client.get(url, params={"cursor": cursor})
            assert response.status_code in (200, 422), (url, value, response.text)
            if response.status_code == 422:
                assert response.json()["code"] == "invalid_cursor", (url, value)
    for event_id in ("9" * 30, str(2**63)):
        response = client.get(f"/jobs/{job['id']}/events", headers={"Last-Event-ID": event_id})
        refused(response, 422, "Last-Event-ID")


def test_worker_reports_with_non_finite_or_huge_numbers(client: TestClient):
    """A skipped fp16 step reports grad_norm inf: stored as null (PostgreSQL's JSON refuses
    NaN and Infinity); numbers no column holds are a 422, not a 500."""
    holder = Holder(client, client.post("/jobs", json=TINY).json())
    url = f"/worker/jobs/{holder.job['id']}/events"
    headers = {**holder.lease, "content-type": "application/json"}
    report = ('{"metrics": {"loss": 1.5, "grad_norm": Infinity, "lr": NaN}, "step": 1, '
              '"total": 6, "events": [{"kind": "metrics", "data": {"grad_norm": -Infinity, '
              '"nested": [NaN, {"x": Infinity}]}}]}')
    assert client.post(url, content=report, headers=headers).status_code == 204
    job = client.get(f"/jobs/{holder.job['id']}").json()
    assert job["metrics"] == {"loss": 1.5, "grad_norm": None, "lr": None}
    events = client.get(f"/jobs/{holder.job['id']}/events").json()["items"]
    assert events[-1]["data"] == {"grad_norm": None, "nested": [None, {"x": None}]}
    for body in ('{"step": 99999999999999}', '{"total": 2147483648}'):
        refused(client.post(url, content=body, headers=headers), 422)
    config = holder.put("adapter_config.json", json.dumps({"r": 2**40}).encode())
    weights = holder.put("adapter_model.safetensors", safetensors_bytes())
    refused(holder.complete([config, weights]), 422, "`r`")
    refused(holder.checkpoint([config, weights]), 422, "`r`")
    huge = {**weights, "size": 2**64}
    refused(holder.checkpoint([huge]), 422)
    refused(client.post(f"/worker/jobs/{holder.job['id']}/checkpoints", headers=holder.lease,
                        json={"step": 2**40, "files": [weights]}), 422)
    done = client.post(f"/worker/jobs/{holder.job['id']}/complete", headers=headers,
                       content=json.dumps({"kind": "lora", "files": [
                           holder.put("adapter_config.json", CONFIG), weights]})[:-1]
                       + ', "metrics": {"loss": NaN}}')
    assert done.status_code == 200, done.text
    (adapter,) = client.get("/adapters").json()["items"]
    assert adapter["metrics"] == {"loss": None}
