"""Hostile files from a worker, on SQLite and PostgreSQL: what it offers as a result or a
checkpoint (pickles, zips, bad names, bad adapter_config.json, numbers no column holds) is
refused with a clear 422 that leaves nothing registered; what is served back is a flat, safe
folder under sanitised names."""

from __future__ import annotations

import io
import json
import pickle
import tarfile
import zipfile

import pytest
from fastapi.testclient import TestClient

from api.downloads import content_disposition, safe_archive_name
from tests.factories import Holder, refused, safetensors_bytes
from tests.specs import tiny_spec

TINY = tiny_spec()


def torch_save_like_zip() -> bytes:
    """What `torch.save` writes: a zip holding a pickle."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    return buffer.getvalue()


CONFIG = json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 4,
                     "target_modules": ["q_proj"]}).encode()


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
                "a//b.json", ".", ".."]


def test_unsafe_file_names_are_refused(client: TestClient, holder: Holder):
    """Each name is refused by the registry's name check itself (unsafe_file_name, naming it),
    not by anything before it: the files are otherwise a valid result and checkpoint."""
    good = holder.put("adapter_config.json", CONFIG)
    weights = holder.put("adapter_model.safetensors", safetensors_bytes())
    for name in UNSAFE_NAMES:
        for response in (holder.complete([good, {**weights, "name": name}]),
                         holder.checkpoint([good, weights, {**weights, "name": name}])):
            body = refused(response, 422, f"file name {name!r}")
            assert body["code"] == "unsafe_file_name", (name, body)
    _assert_nothing_registered(client, holder)


def test_a_file_name_over_255_characters_is_refused_by_the_schema(client: TestClient,
                                                                   holder: Holder):
    """The request schema bounds names to 255 characters, before the registry sees them (its
    own length check is exercised in tests/service/test_registry.py)."""
    good = holder.put("adapter_config.json", CONFIG)
    weights = holder.put("adapter_model.safetensors", safetensors_bytes())
    long_name = {**weights, "name": "x" * 256}
    for response, where in ((holder.complete([good, long_name]), "body.files.1.name"),
                            (holder.checkpoint([good, weights, long_name]), "body.files.2.name")):
        body = refused(response, 422, "at most 255 characters")
        assert body["code"] == "invalid_request"
        assert [e["loc"] for e in body["errors"]] == [where], body
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


# -------------------------------------------------------------- archive names


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
