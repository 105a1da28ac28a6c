"""Evaluations and samples through the API and an in-process worker: an adapter trained on a
set scores a lower loss on it than the bare base, exact match agrees with the per-example
results, greedy samples are deterministic and equal peft's own greedy output."""

from __future__ import annotations

import json

import pytest
import torch
from fastapi.testclient import TestClient
from peft import PeftModel

from service.settings import Settings
from tests.factories import assert_problem, run_worker
from tests.specs import tiny_spec
from worker.demo import demo_dataset_path
from worker.trainer.model import load_causal_lm, load_tokenizer

MISSING_DATASET = "ds_01jd8x4k2m9q7r5t3v1w0y6z8a"
PROMPTS = ["max 66 2\n", "sort: rock\n", "hello"]


def _train(client: TestClient, settings: Settings) -> dict:
    """A LoRA adapter of the demo model trained on the demo set."""
    job = client.post("/jobs", json=tiny_spec("evaluated", max_steps=12, save_interval=-1,
                                              lr=0.02)).json()
    run_worker(client, settings)
    job = client.get(f"/jobs/{job['id']}").json()
    assert job["state"] == "succeeded", job["error"]
    return client.get(f"/adapters/{job['adapter_id']}").json()


def _evaluate(client: TestClient, settings: Settings, **body) -> dict:
    created = client.post("/evaluations", json={"dataset": "demo", "max_samples": 8,
                                                "max_new_tokens": 8, **body})
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "queued"
    run_worker(client, settings)
    evaluation = client.get(f"/evaluations/{created.json()['id']}").json()
    assert evaluation["state"] == "succeeded", evaluation["error"]
    return evaluation


def test_evaluations_and_samples_of_a_trained_adapter(
    client: TestClient, settings: Settings
) -> None:
    """One training per engine serves every check (training is the slow part)."""
    trained = _train(client, settings)
    _check_evaluations(client, settings, trained)
    _check_samples(client, settings, trained)
    _check_refusals(client, trained)


def _check_evaluations(client: TestClient, settings: Settings, trained: dict) -> None:
    tuned = _evaluate(client, settings, adapter=f"{trained['name']}:{trained['version']}")
    bare = _evaluate(client, settings, adapter=None, base_model="demo-tiny-llama")

    assert tuned["adapter_id"] == trained["id"] and tuned["base_model"] == "demo-tiny-llama"
    assert bare["adapter_id"] is None
    assert tuned["results"]["loss"] < bare["results"]["loss"]
    for evaluation in (tuned, bare):
        results = evaluation["results"]
        examples = results["examples"]
        assert [e["index"] for e in examples] == list(range(8)) and results["rows"] == 8
        rows = [json.loads(line) for line in demo_dataset_path().read_text().splitlines()[:8]]
        assert [e["reference"] for e in examples] == [r["answer"] for r in rows]
        count = sum(e["prediction"].strip() == e["reference"].strip() for e in examples)
        assert results["exact_matches"] == count
        assert results["exact_match"] == pytest.approx(count / 8)
        tokens = sum(e["tokens"] for e in examples)
        assert results["tokens"] == tokens
        weighted = sum(e["loss"] * e["tokens"] for e in examples) / tokens
        assert results["loss"] == pytest.approx(weighted)
        assert results["perplexity"] == pytest.approx(torch.tensor(weighted).exp().item())

    listed = client.get(f"/adapters/{trained['id']}").json()["evaluations"]
    assert [e["id"] for e in listed] == [tuned["id"]]
    assert listed[0]["loss"] == tuned["results"]["loss"]
    assert listed[0]["exact_match"] == tuned["results"]["exact_match"]


def _check_samples(client: TestClient, settings: Settings, trained: dict) -> None:
    """Greedy samples are the same on two runs and equal peft's greedy output; sampled ones
    with the same seed are the same too."""

    def sample(temperature: float = 0.0) -> dict:
        created = client.post("/samples", json={"adapter": trained["id"], "prompts": PROMPTS,
                                                "max_new_tokens": 12, "seed": 7,
                                                "temperature": temperature})
        assert created.status_code == 201, created.text
        run_worker(client, settings)
        done = client.get(f"/samples/{created.json()['id']}").json()
        assert done["state"] == "succeeded", done["error"]
        return done

    first, second = sample(), sample()
    completions = [c["completion"] for c in first["results"]["completions"]]
    assert completions == [c["completion"] for c in second["results"]["completions"]]

    folder = settings.data_dir / "peft-check"
    folder.mkdir()
    for f in trained["files"]:
        folder.joinpath(f["name"]).write_bytes(
            client.get(f"/adapters/{trained['id']}/files/{f['name']}").content)
    base_dir = settings.models_dir / "demo-tiny-llama"
    tokenizer = load_tokenizer(base_dir)
    model = PeftModel.from_pretrained(load_causal_lm(base_dir), str(folder)).eval()
    expected = []
    for prompt in PROMPTS:
        ids = torch.tensor([[tokenizer.bos_token_id,
                             *tokenizer(prompt, add_special_tokens=False)["input_ids"]]])
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                 do_sample=False, max_new_tokens=12,
                                 pad_token_id=tokenizer.pad_token_id)
        text = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        expected.append(text.replace("\x00", "\ufffd"))  # the server stores NUL as U+FFFD
    assert completions == expected
    hot = [[c["completion"] for c in sample(1.5)["results"]["completions"]] for _ in range(2)]
    assert hot[0] == hot[1] and any(hot[0])


def _check_refusals(client: TestClient, trained: dict) -> None:
    bare = client.post("/evaluations", json={"adapter": None, "dataset": "demo"})
    assert assert_problem(bare, 422, "base_model_required")["errors"][0]["loc"] == "base_model"
    unknown = client.post("/evaluations", json={"adapter": "nobody:1", "dataset": "demo"})
    assert_problem(unknown, 422, "invalid_lora_path")
    other_base = client.post("/evaluations", json={"adapter": trained["id"], "dataset": "demo",
                                                   "base_model": "other-model"})
    assert_problem(other_base, 422, "invalid_lora_path")
    dataset = client.post("/evaluations", json={"adapter": trained["id"], "dataset": MISSING_DATASET})
    problem = assert_problem(dataset, 422, "unknown_dataset")
    assert problem["errors"][0]["loc"] == "dataset" and "train_data_paths" not in problem["detail"]
    assert_problem(client.post("/samples", json={"adapter": trained["id"], "prompts": []}), 422)
    assert_problem(client.get("/evaluations/job_nope"), 404)
    sample_id = client.post("/samples", json={"adapter": trained["id"],
                                              "prompts": ["x"]}).json()["id"]
    assert_problem(client.get(f"/evaluations/{sample_id}"), 404)
    assert client.get(f"/jobs/{sample_id}").json()["kind"] == "sample"
    held = client.delete(f"/adapters/{trained['id']}")  # a queued sample job uses it
    assert held.status_code == 409 and f"{sample_id} (sample, queued)" in held.json()["detail"]
