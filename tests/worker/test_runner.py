"""A real worker (in this process) training real jobs against the app: results, user errors,
checkpoints, lineage, and the registry's view of them — on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient

from tests.factories import run_worker
from tests.s3 import artifacts_url, s3_endpoint  # noqa: F401  (fixtures: both stores)
from tests.specs import tiny_spec

TINY = tiny_spec()


def adapter_of(client: TestClient, job_id: str) -> dict:
    job = client.get(f"/jobs/{job_id}").json()
    assert job["state"] == "succeeded", job["error"]
    return client.get(f"/adapters/{job['adapter_id']}").json()


def test_lora_job_registers_a_loadable_adapter(client: TestClient, settings):
    job = client.post("/jobs", json=TINY).json()
    run_worker(client, settings)
    done = client.get(f"/jobs/{job['id']}").json()
    assert done["state"] == "succeeded", done["error"]
    assert done["progress"] == {"step": 6, "total": 6}
    adapter = client.get(f"/adapters/{done['adapter_id']}").json()
    assert adapter["name"] == "tiny" and adapter["version"] == 1
    assert adapter["kind"] == "lora" and adapter["rank"] == 4 and adapter["alpha"] == 4
    assert adapter["base_model"] == "demo-tiny-llama"
    assert {f["name"] for f in adapter["files"]} == {"adapter_config.json",
                                                     "adapter_model.safetensors"}
    assert "q_proj" in adapter["target_modules"] and "lm_head" in adapter["target_modules"]

    kinds = {e["kind"] for e in client.get(f"/jobs/{job['id']}/events").json()["items"]}
    assert {"state", "log", "metrics"} <= kinds
    metrics = [e["data"] for e in client.get(f"/jobs/{job['id']}/events").json()["items"]
               if e["kind"] == "metrics"]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5, 6]
    assert all({"loss", "lr", "grad_norm", "tokens_per_s"} <= m.keys() for m in metrics)

    # the archive is a plain PEFT folder that peft loads onto the base model
    import tarfile

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folder = settings.data_dir / "pulled"
    archive = client.get(f"/adapters/{adapter['id']}/archive")
    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        tar.extractall(folder, filter="data")
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "demo-tiny-llama" and config["r"] == 4
    base = AutoModelForCausalLM.from_pretrained(settings.models_dir / "demo-tiny-llama")
    model = PeftModel.from_pretrained(base, folder)
    assert any("lora_A" in name for name, _ in model.named_parameters())


def test_checkpoints_are_listed_and_pruned(client: TestClient, settings):
    spec = json.loads(json.dumps(TINY))
    spec["runner"].update(max_steps=10, save_interval=2)
    job = client.post("/jobs", json=spec).json()
    run_worker(client, settings)
    assert client.get(f"/jobs/{job['id']}").json()["state"] == "succeeded"
    checkpoints = client.get(f"/jobs/{job['id']}/checkpoints").json()["items"]
    # steps 2, 4, 6, 8 were saved; the newest `checkpoints_keep` (3) survive pruning
    assert [c["step"] for c in checkpoints] == [4, 6, 8]
    assert all(c["lora_path"] for c in checkpoints)


def test_continue_from_adapter_and_lineage(client: TestClient, settings):
    first = client.post("/jobs", json=TINY).json()
    run_worker(client, settings)
    parent = adapter_of(client, first["id"])

    second = client.post("/jobs", json=tiny_spec(lora_path=parent["lora_path"])).json()
    assert second["parent_adapter_id"] == parent["id"]
    run_worker(client, settings)
    child = adapter_of(client, second["id"])

    third = client.post("/jobs", json=tiny_spec(lora_path="tiny:2", lora_rank=None)).json()
    run_worker(client, settings)
    grandchild = adapter_of(client, third["id"])

    assert [child["version"], grandchild["version"]] == [2, 3]
    assert child["parent_adapter_id"] == parent["id"]
    assert [a["id"] for a in grandchild["lineage"]] == [child["id"], parent["id"]]
    assert grandchild["rank"] == parent["rank"] == 4

    # the first loss of the child continues where the parent ended (not from scratch)
    def losses(job_id: str) -> list[float]:
        events = client.get(f"/jobs/{job_id}/events").json()["items"]
        return [e["data"]["loss"] for e in events if e["kind"] == "metrics"]

    parent_losses, child_losses = losses(first["id"]), losses(second["id"])
    assert child_losses[0] < parent_losses[0] * 0.9


def test_rank_mismatch_with_parent_is_refused_at_submit(client: TestClient, settings):
    client.post("/jobs", json=TINY)
    run_worker(client, settings)
    refused = client.post("/jobs", json=tiny_spec(lora_path="tiny@latest", lora_rank=8))
    assert refused.status_code == 422
    assert "4" in refused.json()["detail"] and "8" in refused.json()["detail"]


def test_full_fine_tuning_registers_a_full_model(client: TestClient, settings):
    spec = tiny_spec(is_lora=False)
    spec["runner"]["experiment_name"] = "full"
    job = client.post("/jobs", json=spec).json()
    run_worker(client, settings)
    done = client.get(f"/jobs/{job['id']}").json()
    assert done["state"] == "succeeded", done["error"]
    adapter = client.get(f"/adapters/{done['adapter_id']}").json()
    assert adapter["kind"] == "full" and adapter["rank"] is None
    names = {f["name"] for f in adapter["files"]}
    assert "config.json" in names and "model.safetensors" in names
    refused = client.post("/jobs", json=tiny_spec(lora_path=adapter["id"]))
    assert refused.status_code == 422 and "full" in refused.json()["detail"]


def _local_file(settings, name: str, text: str) -> str:
    path = settings.data_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"model": {"model_path": "no-such-model"}}, "model_not_found"),
        ({"model": {"target_modules": ["nothing_here"]}}, "no_matching_modules"),
        ({"model": {"lora_rank": 200}}, "rank_too_large"),
        ({"data": "missing_keys"}, "dataset_missing_keys"),
        ({"data": "empty"}, "dataset_empty"),
    ],
    ids=["model-not-found", "no-matching-modules", "rank-too-large", "missing-keys", "empty"],
)
def test_user_errors_fail_at_once_with_their_code(client: TestClient, settings, change, code):
    settings.data_path_roots = [settings.data_dir]  # the operator allows local data files here
    spec = tiny_spec(**change.get("model", {}))
    if change.get("data") == "missing_keys":
        spec["data"] = {"train_data_paths": _local_file(settings, "d.jsonl",
                                                        '{"question": "a", "answer": "b"}\n')}
    if change.get("data") == "empty":
        spec["data"] = {"train_data_paths": _local_file(settings, "e.jsonl", "")}
    job = client.post("/jobs", json=spec).json()
    run_worker(client, settings)
    failed = client.get(f"/jobs/{job['id']}").json()
    assert failed["state"] == "failed"
    assert failed["attempt"] == 1
    assert failed["error"]["code"] == code
    assert failed["error"]["retryable"] is False
    assert len(failed["error"]["message"]) > 20
    if code == "no_matching_modules":
        assert "q_proj" in failed["error"]["message"]  # names the model's linear modules


def test_uploaded_dataset_trains(client: TestClient, settings):
    from worker.demo import demo_dataset_path

    uploaded = client.post("/datasets", content=demo_dataset_path().read_bytes(),
                           headers={"content-type": "application/jsonl"}).json()
    assert uploaded["id"].startswith("ds_") and uploaded["rows"] == 200
    spec = json.loads(json.dumps(TINY))
    spec["data"] = {"train_data_paths": [uploaded["id"]]}
    job = client.post("/jobs", json=spec).json()
    run_worker(client, settings)
    assert client.get(f"/jobs/{job['id']}").json()["state"] == "succeeded"


def test_corrupt_upload_is_refused_and_nothing_registered(client: TestClient, settings):
    job = client.post("/jobs", json=TINY).json()
    lease = client.post("/worker/claim", json={"worker_id": "w"}).json()
    header = {"X-Loraplane-Lease": lease["lease_id"]}
    claimed_sha = "0" * 64
    bad = client.put(f"/worker/jobs/{job['id']}/blobs/{claimed_sha}", content=b"not that",
                     headers=header)
    assert bad.status_code == 422 and bad.json()["code"] == "checksum_mismatch"
    result = {"kind": "lora", "rank": 4, "files": [
        {"name": "adapter_config.json", "sha256": claimed_sha, "size": 8},
        {"name": "adapter_model.safetensors", "sha256": "1" * 64, "size": 8}]}
    refused = client.post(f"/worker/jobs/{job['id']}/complete", json=result, headers=header)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "blob_missing"
    assert "adapter_config.json, adapter_model.safetensors" in refused.json()["detail"]
    assert client.get(f"/jobs/{job['id']}").json()["state"] == "running"
    assert client.get("/adapters").json()["items"] == []


def test_cancel_running_job_stops_within_a_step(client: TestClient, settings):
    import threading
    import time

    spec = json.loads(json.dumps(TINY))
    spec["runner"].update(max_steps=5000, save_interval=-1)
    settings.lease_seconds = 3  # a heartbeat every second carries the cancel to the worker
    job = client.post("/jobs", json=spec).json()

    def cancel_when_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if client.get(f"/jobs/{job['id']}").json()["progress"]["step"] >= 3:
                client.post(f"/jobs/{job['id']}/cancel")
                return
            time.sleep(0.05)

    canceller = threading.Thread(target=cancel_when_running)
    canceller.start()
    run_worker(client, settings)
    canceller.join()
    done = client.get(f"/jobs/{job['id']}").json()
    assert done["state"] == "cancelled"
    assert 3 <= done["progress"]["step"] < 5000
    assert done["adapter_id"] is None
