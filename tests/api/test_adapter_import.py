"""`POST /adapters`: a PEFT folder trained elsewhere, checked like a worker's result, becomes
the next version of a name; it moves byte for byte between installations on both engines."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from peft import PeftModel
from safetensors.torch import load_file, save

from service.settings import Settings
from tests import peft_folders
from tests.peft_folders import (
    BASE,
    RANK,
    blob_count,
    import_tar,
    pair,
    tar_bytes,
    tiny_base,
    untar,
    with_config,
)

# Fixtures shared with the other import/export suites.
other_client = peft_folders.other_client
other_settings = peft_folders.other_settings
peft_folder = peft_folders.peft_folder


def multipart(files: dict[str, bytes], **fields: str | list[str]):
    return {
        "files": [("files", (name, data, "application/octet-stream"))
                  for name, data in files.items()],
        "data": fields,
    }


def test_an_adapter_moves_between_installations_byte_for_byte(
    client: TestClient, other_client: TestClient, peft_folder: Path, tmp_path: Path
):
    original = pair(peft_folder)
    first = import_tar(client, original, name="support-bot")
    assert first.status_code == 201, first.text
    made = first.json()
    assert (made["name"], made["version"], made["source"], made["job_id"]) == (
        "support-bot", 1, "import", None)
    assert (made["kind"], made["rank"], made["alpha"], made["base_model"]) == (
        "lora", RANK, 2.0 * RANK, BASE)
    assert sorted(made["target_modules"]) == ["q_proj", "v_proj"]
    assert {f["name"]: f["sha256"] for f in made["files"]} == {
        name: hashlib.sha256(data).hexdigest() for name, data in original.items()}
    assert first.headers["location"] == f"/adapters/{made['id']}"

    archive = client.get(f"/adapters/{made['id']}/archive")
    assert archive.status_code == 200
    # The other installation takes the downloaded archive as it is, as multipart too.
    moved = other_client.post("/adapters", content=archive.content,
                              params={"name": "support-bot", "base_model": BASE},
                              headers={"Content-Type": "application/x-tar"})
    assert moved.status_code == 201, moved.text
    again = other_client.get(f"/adapters/{moved.json()['id']}/archive")
    assert untar(again.content) == original

    folder = tmp_path / "pulled"
    folder.mkdir()
    for name, data in untar(again.content).items():
        (folder / name).write_bytes(data)
    loaded = PeftModel.from_pretrained(tiny_base(), folder)
    expected = load_file(peft_folder / "adapter_model.safetensors")
    state = loaded.state_dict()
    for key, tensor in expected.items():
        live = key.replace(".weight", ".default.weight")
        assert torch.equal(state[live], tensor), key

    # ... and continues training there: a job names it as lora_path, the claim hands out
    # exactly its files.
    adapter = moved.json()
    job = other_client.post("/jobs", json={"actor": {"model": {
        "model_path": BASE, "is_lora": True, "lora_rank": RANK,
        "lora_path": adapter["lora_path"]}}})
    assert job.status_code == 201, job.text
    assert job.json()["parent_adapter_id"] == adapter["id"]
    claimed = other_client.post("/worker/claim", json={"worker_id": "w1"}).json()
    assert claimed["lora_source"]["adapter_id"] == adapter["id"]
    assert {f["name"]: f["sha256"] for f in claimed["lora_source"]["files"]} == {
        f["name"]: f["sha256"] for f in adapter["files"]}


def test_the_same_bytes_under_a_name_are_the_same_version(
    client: TestClient, peft_folder: Path, settings: Settings
):
    files = pair(peft_folder)
    first = import_tar(client, files, name="bot")
    assert first.status_code == 201
    blobs = blob_count(settings)
    again = client.post("/adapters", **multipart(files, name="bot", base_model=BASE))
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert blob_count(settings) == blobs
    other_name = import_tar(client, files, name="bot-copy")
    assert (other_name.status_code, other_name.json()["version"]) == (201, 1)
    changed = import_tar(client, with_config(files, lora_dropout=0.1), name="bot")
    assert (changed.status_code, changed.json()["version"]) == (201, 2)
    assert changed.json()["digest"] != first.json()["digest"]
    listed = client.get("/adapters", params={"name": "bot"}).json()["items"]
    assert [a["version"] for a in listed] == [2, 1]


def test_multipart_with_fields_and_a_folder_inside_the_tar(client: TestClient, peft_folder: Path):
    files = pair(peft_folder)
    made = client.post("/adapters", **multipart(
        files, name="forms", base_model=BASE, description="trained with TRL",
        tag=["team:search", "stage:dev"]))
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["description"], body["tags"]) == (
        "trained with TRL", {"stage": "dev", "team": "search"})
    # `tar -cf a.tar my-adapter` (one top folder) and `tar -C my-adapter -cf a.tar .`
    nested = {f"my-adapter/{name}": data for name, data in files.items()}
    assert import_tar(client, nested, name="nested").status_code == 201
    dotted = {f"./{name}": data for name, data in files.items()}
    assert import_tar(client, dotted, name="nested").status_code == 200


def lora_weights(shapes: dict[str, list[int]]) -> bytes:
    return save({name: torch.zeros(shape) for name, shape in shapes.items()})


PREFIX = "base_model.model.model.layers.0.self_attn"


def refusals(files: dict[str, bytes]) -> dict[str, tuple[dict, str, str]]:
    """name -> (request kwargs, code, a phrase of the message)"""
    pickle_bytes = b"\x80\x04\x95" + b"\x00" * 32
    wrong_rank = lora_weights({f"{PREFIX}.q_proj.lora_A.weight": [RANK + 1, 32],
                               f"{PREFIX}.q_proj.lora_B.weight": [32, RANK + 1]})
    return {
        "pickle-in-tar": (
            {"content": tar_bytes({"adapter_config.json": files["adapter_config.json"],
                                   "adapter_model.bin": pickle_bytes}),
             "headers": {"Content-Type": "application/x-tar"}},
            "pickle_refused", "pickle-based format"),
        "pickle-in-form": (
            multipart({"adapter_config.json": files["adapter_config.json"],
                       "training_args.pt": pickle_bytes}),
            "pickle_refused", "pickle-based format"),
        "pickle-named-safetensors": (
            {"content": tar_bytes({**files, "adapter_model.safetensors": pickle_bytes}),
             "headers": {"Content-Type": "application/x-tar"}},
            "pickle_refused", "pickles are never accepted"),
        "shape-disagrees-with-rank": (
            {"content": tar_bytes({**files, "adapter_model.safetensors": wrong_rank}),
             "headers": {"Content-Type": "application/x-tar"}},
            "tensor_shape_mismatch", f"with r={RANK}"),
        "rank-0": (
            {"content": tar_bytes(with_config(files, r=0)),
             "headers": {"Content-Type": "application/x-tar"}},
            "invalid_adapter_config", "positive integer; got 0"),
        "dotdot-name": (
            {"content": tar_bytes({"adapter_config.json": files["adapter_config.json"],
                                   "../adapter_model.safetensors":
                                       files["adapter_model.safetensors"]}),
             "headers": {"Content-Type": "application/x-tar"}},
            "unsafe_file_name", "`..` part"),
        "dotdot-form-name": (
            multipart({"adapter_config.json": files["adapter_config.json"],
                       "../../adapter_model.safetensors": files["adapter_model.safetensors"]}),
            "unsafe_file_name", "`..` part"),
        "symlink": (
            {"content": tar_bytes({"adapter_config.json": files["adapter_config.json"]},
                                  links={"adapter_model.safetensors": "/etc/passwd"}),
             "headers": {"Content-Type": "application/x-tar"}},
            "unsafe_file_name", "link"),
        "not-a-tar": (
            {"content": b"hello" * 300, "headers": {"Content-Type": "application/x-tar"}},
            "invalid_archive", "not a complete tar"),
        "extra-file": (
            {"content": tar_bytes({**files, "README.md": b"# model card"}),
             "headers": {"Content-Type": "application/x-tar"}},
            "invalid_artifact", "exactly adapter_config.json + adapter_model.safetensors"),
    }


CASES = list(refusals({"adapter_config.json": b"{}", "adapter_model.safetensors": b""}))


@pytest.mark.parametrize("case", CASES)
def test_refused_imports_store_nothing(
    client: TestClient, settings: Settings, peft_folder: Path, case: str
):
    kwargs, code, phrase = refusals(pair(peft_folder))[case]
    params = {"name": "refused", "base_model": BASE}
    if "data" in kwargs:
        kwargs = {**kwargs, "data": {**kwargs["data"], **params}}
    else:
        kwargs = {**kwargs, "params": params}
    blobs = blob_count(settings)
    response = client.post("/adapters", **kwargs)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == code and phrase in problem["detail"], problem
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/adapters").json()["items"] == []
    assert blob_count(settings) == blobs


def test_names_types_and_sizes_are_checked_before_reading(
    client: TestClient, peft_folder: Path
):
    files = pair(peft_folder)
    bad_name = import_tar(client, files, name="../etc")
    assert (bad_name.status_code, bad_name.json()["code"]) == (422, "invalid_adapter_name")
    no_base = client.post("/adapters", params={"name": "x"}, content=tar_bytes(files),
                          headers={"Content-Type": "application/x-tar"})
    assert (no_base.status_code, no_base.json()["code"]) == (422, "invalid_base_model")
    json_body = client.post("/adapters?name=x&base_model=b", json={"files": []})
    assert (json_body.status_code, json_body.json()["code"]) == (415, "unsupported_media_type")
    bad_tag = import_tar(client, files, name="x", tag="no colon")
    assert (bad_tag.status_code, bad_tag.json()["code"]) == (422, "invalid_tag")
    too_large = client.post("/adapters?name=x&base_model=b", content=b"",
                            headers={"Content-Type": "application/x-tar",
                                     "Content-Length": str(1 << 50)})
    assert (too_large.status_code, too_large.json()["code"]) == (413, "import_too_large")


def test_a_weights_file_without_lora_tensors_is_no_adapter(client: TestClient, peft_folder: Path):
    files = {**pair(peft_folder), "adapter_model.safetensors": lora_weights({"w": [8]})}
    response = import_tar(client, files)
    assert response.status_code == 422
    assert response.json()["code"] == "tensor_shape_mismatch"
    assert "no LoRA weights" in response.json()["detail"]


def test_a_truncated_safetensors_header_is_refused(client: TestClient, peft_folder: Path):
    files = pair(peft_folder)
    weights = files["adapter_model.safetensors"]
    (length,) = struct.unpack("<Q", weights[:8])
    header = json.loads(weights[8:8 + length])
    name = next(k for k in header if k != "__metadata__")
    header[name]["data_offsets"][1] += 4
    raw = json.dumps(header).encode()
    forged = struct.pack("<Q", len(raw)) + raw + weights[8 + length:]
    response = import_tar(client, {**files, "adapter_model.safetensors": forged})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_safetensors", response.json()
