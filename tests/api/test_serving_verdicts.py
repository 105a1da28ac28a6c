"""Serving verdicts: every registered LoRA adapter says whether vLLM and peft load it, and why
not; `GET /adapters?servable=` filters on them; POST /jobs warns of a rank vLLM pads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.app import create_app
from db import models
from service.registry import serving
from service.registry.serving import peft_verdict, vllm_verdict
from service.settings import Settings
from tests.conftest import authenticate_as_admin
from tests.peft_folders import import_tar, pair, tiny_base
from tests.specs import model_spec
from worker.trainer import adapter_config as worker_adapter_config


def _peft_folder(folder: Path, **lora) -> Path:
    """A folder written by peft's own save_pretrained, with these LoraConfig arguments."""
    import torch
    from peft import LoraConfig, get_peft_model

    arguments = {
        "r": 4,
        "lora_alpha": 8,
        "target_modules": ["q_proj", "v_proj"],
        "init_lora_weights": "gaussian",
        **lora,
    }
    model = get_peft_model(tiny_base(), LoraConfig(**arguments))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.normal_()
    model.save_pretrained(folder)
    return folder


CRAFTED = {
    "normal": {},
    "rank24": {"r": 24},
    "dora": {"use_dora": True},
    "saved_head": {"modules_to_save": ["lm_head"]},
    "bias": {"bias": "lora_only"},
}


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("crafted")
    return {name: pair(_peft_folder(root / name, **lora)) for name, lora in CRAFTED.items()}


def _portable(files: dict[str, bytes]) -> dict[str, bytes]:
    """The files with the config the service's trainer writes (fields peft 0.11 lacks left out
    at their defaults)."""
    from peft import LoraConfig

    config = json.loads(files["adapter_config.json"])
    config = worker_adapter_config.portable_adapter_config(config, LoraConfig().to_dict())
    return {**files, "adapter_config.json": json.dumps(config).encode()}


def _import(client: TestClient, files: dict[str, bytes], name: str) -> dict:
    response = import_tar(client, files, name=name)
    assert response.status_code == 201, response.text
    return response.json()


def test_verdicts_of_crafted_adapters_name_their_reasons(client: TestClient, crafted) -> None:
    made = {name: _import(client, files, name) for name, files in crafted.items()}
    for adapter in made.values():  # the stored verdict is what GET shows
        assert client.get(f"/adapters/{adapter['id']}").json()["serving"] == adapter["serving"]
    vllm = {name: adapter["serving"]["vllm"] for name, adapter in made.items()}

    assert vllm["normal"] == {
        "ok": True, "reasons": [], "max_lora_rank": 8,
        "notes": [("rank 4 is not one of vLLM's --max-lora-rank values "
                  "[1, 8, 16, 32, 64, 128, 256, 320, 512]: serve it with --max-lora-rank 8 or "
                  "more (its weights are padded to that rank)")],
    }  # fmt: skip
    # vLLM takes any rank up to the server's --max-lora-rank (one of its values) and pads it;
    # 24 needs 32, twice vLLM's default of 16.
    assert vllm["rank24"]["ok"] is True and vllm["rank24"]["max_lora_rank"] == 32
    assert vllm["rank24"]["notes"] == [
        (
            "rank 24 is not one of vLLM's --max-lora-rank values [1, 8, 16, 32, 64, 128, 256, 320, "
            "512]: serve it with --max-lora-rank 32 or more (its weights are padded to that rank)"
        ),
        "needs --max-lora-rank 32 or more (vLLM's default is 16)",
    ]
    assert vllm["dora"]["ok"] is False
    assert (
        vllm["dora"]["reasons"][0] == "DoRA (use_dora) is not supported by vLLM (use_dora is true)"
    )
    assert "lora_magnitude_vector" in vllm["dora"]["reasons"][1]  # DoRA's own tensors
    assert vllm["saved_head"]["ok"] is False
    assert vllm["saved_head"]["reasons"][0] == (
        "modules_to_save lists ['lm_head']: vLLM loads no whole modules besides one "
        "classification head ['classifier', 'score']"
    )
    assert "base_model.model.lm_head.weight" in vllm["saved_head"]["reasons"][1]
    assert vllm["bias"] == {
        "ok": False,
        "max_lora_rank": 8,
        "notes": vllm["normal"]["notes"],
        "reasons": ['bias is "lora_only": vLLM loads only adapters with bias "none"'],
    }

    # peft 0.21's save_pretrained writes fields peft 0.11.1 refuses, even at their defaults.
    peft = made["normal"]["serving"]["peft"]
    assert peft["ok"] is False
    assert (
        "alora_invocation_tokens (null, its default) is a field peft 0.11.1 (RLinf's pin) "
        "does not know, so its LoraConfig refuses the file; deleting alora_invocation_tokens "
        "from adapter_config.json changes nothing for newer peft"
    ) in peft["reasons"]
    assert any(r.startswith("peft_version (") for r in peft["reasons"])


def test_the_trainers_portable_config_is_ok_for_peft(client: TestClient, crafted) -> None:
    adapter = _import(client, _portable(crafted["normal"]), "portable")
    assert adapter["serving"]["peft"] == {"ok": True, "reasons": [], "notes": []}
    assert adapter["serving"]["vllm"]["ok"] is True


def test_servable_filters_the_list(client: TestClient, crafted) -> None:
    ids = {name: _import(client, files, name)["id"] for name, files in crafted.items()}
    ids["portable"] = _import(client, _portable(crafted["normal"]), "portable")["id"]

    def listed(**params: str) -> set[str]:
        response = client.get("/adapters", params={"limit": 100, **params})
        assert response.status_code == 200, response.text
        return {a["id"] for a in response.json()["items"]}

    assert listed() == set(ids.values())
    for item in client.get("/adapters", params={"name": "dora"}).json()["items"]:  # listings too
        assert item["serving"] == client.get(f"/adapters/{item['id']}").json()["serving"]
        assert item["serving"]["vllm"]["ok"] is False
    assert listed(servable="vllm") == {ids["normal"], ids["rank24"], ids["portable"]}
    assert listed(servable="peft") == {ids["portable"]}
    assert listed(servable="vllm", name="rank24") == {ids["rank24"]}
    bad = client.get("/adapters", params={"servable": "tgi"})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert "servable" in bad.text


def test_adapters_from_before_verdicts_get_them_when_the_api_starts(
    client: TestClient, settings: Settings, crafted
) -> None:
    dora = _import(client, crafted["dora"], "dora")
    normal = _import(client, crafted["normal"], "normal")
    with client.app.state.loraplane.session(None) as session:  # as migration 0006 leaves them
        session.execute(
            update(models.Adapter).values(serving=None, vllm_servable=None, peft_servable=None)
        )
        session.commit()
    assert client.get(f"/adapters/{dora['id']}").json()["serving"] is None
    assert client.get("/adapters", params={"servable": "vllm"}).json()["items"] == []

    with TestClient(create_app(settings)) as again:
        authenticate_as_admin(again, settings)
        assert again.get(f"/adapters/{dora['id']}").json()["serving"] == dora["serving"]
        listed = again.get("/adapters", params={"servable": "vllm"}).json()["items"]
        assert [a["id"] for a in listed] == [normal["id"]]


@pytest.mark.parametrize(
    ("rank", "warned"),
    [
        (16, None),
        (
            24,
            (
                "actor.model.lora_rank 24 is not one of vLLM's --max-lora-rank values [1, 8, 16, "
                "32, 64, 128, 256, 320, 512]: vLLM refuses the adapter unless started with "
                "--max-lora-rank 32 or more, and pads its weights to that rank"
            ),
        ),
        (
            600,
            (
                "actor.model.lora_rank 600 is above 512, the largest --max-lora-rank vLLM "
                "accepts: vLLM will refuse the adapter this job trains"
            ),
        ),
    ],
)
def test_submit_warns_of_a_rank_vllm_refuses(client: TestClient, rank: int, warned) -> None:
    response = client.post("/jobs", json=model_spec(lora_rank=rank))
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["state"] == "queued"  # a warning, not an error
    assert job["warnings"] == ([warned] if warned else [])
    replay = client.post(
        "/jobs", json=model_spec(lora_rank=rank), headers={"Idempotency-Key": f"k{rank}"}
    )
    again = client.post(
        "/jobs", json=model_spec(lora_rank=rank), headers={"Idempotency-Key": f"k{rank}"}
    )
    assert again.headers.get("idempotent-replayed") == "true"
    assert replay.json()["warnings"] == again.json()["warnings"] == job["warnings"]


def test_vllm_rules_on_configs_and_tensor_names() -> None:
    lora = [
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
    ]
    base = {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj"]}
    assert vllm_verdict(base, lora) == {"ok": True, "reasons": [], "notes": [], "max_lora_rank": 8}
    big = vllm_verdict({**base, "r": 600}, lora)
    assert not big["ok"] and big["max_lora_rank"] is None
    assert big["reasons"] == [
        "rank 600 (r or rank_pattern) is above 512, the largest --max-lora-rank vLLM accepts"
    ]
    patterned = vllm_verdict({**base, "rank_pattern": {"q_proj": 64}}, lora)
    assert patterned["ok"] and patterned["max_lora_rank"] == 64
    assert vllm_verdict({**base, "use_rslora": True}, lora)["notes"] == [
        "use_rslora: vLLM scales by lora_alpha / sqrt(r), as peft does"
    ]
    missing = vllm_verdict({"r": 8, "target_modules": ["q_proj"]}, lora)
    assert missing["reasons"] == [
        (
            "adapter_config.json has no lora_alpha: vLLM requires r, "
            "lora_alpha, target_modules to be present"
        )
    ]
    named = vllm_verdict(base, [n.replace("lora_A.weight", "lora_A.default.weight") for n in lora])
    assert not named["ok"] and "lora_A.default.weight" in named["reasons"][0]
    embedded = [
        "base_model.model.model.embed_tokens.lora_embedding_A",
        "base_model.model.model.embed_tokens.lora_embedding_B",
        "base_model.model.model.embed_tokens.base_layer.weight",
    ]
    assert vllm_verdict(base, embedded)["ok"]
    for key, value in [
        ("lora_bias", True),
        ("alora_invocation_tokens", [5]),
        ("layer_replication", [[0, 1]]),
        ("use_qalora", True),
    ]:
        assert not vllm_verdict({**base, key: value}, lora)["ok"], key
    assert not vllm_verdict({**base, "init_lora_weights": "pissa"}, lora)["ok"]
    assert vllm_verdict({**base, "init_lora_weights": "gaussian"}, lora)["ok"]
    assert vllm_verdict(
        {**base, "modules_to_save": ["score"]}, [*lora, "base_model.model.score.weight"]
    )["ok"]


def test_peft_rules() -> None:
    assert peft_verdict({"r": 8, "lora_alpha": 8, "use_dora": True}) == {
        "ok": True,
        "reasons": [],
        "notes": [],
    }  # DoRA is in peft 0.11
    verdict = peft_verdict({"r": 8, "lora_bias": True, "made_up": 1})
    assert verdict["reasons"] == [
        (
            "lora_bias is true: a feature peft 0.11.1 (RLinf's pin) does not have; it refuses the "
            "file, a newer peft is needed"
        ),
        (
            "made_up is not a LoraConfig field of peft 0.11.1 to 0.21: older peft refuses the "
            "file, newer ones ignore the field"
        ),
    ]


def test_worker_and_service_agree_on_peft_0_11s_fields() -> None:
    assert worker_adapter_config.PEFT_0_11_LORA_FIELDS == serving.PEFT_0_11_LORA_FIELDS


_VLLM_CHECK = """
import json, sys
from vllm.config.lora import LoRAConfig
from vllm.lora.peft_helper import PEFTHelper
from vllm.lora.utils import is_base_embedding_weights, parse_fine_tuned_lora_name

answers = []
for config, names, max_lora_rank in json.load(sys.stdin):
    errors = []
    try:
        helper = PEFTHelper.from_dict(config)
        helper.validate_legal(LoRAConfig(max_lora_rank=max_lora_rank))
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    for name in names:
        if is_base_embedding_weights(name):
            continue
        try:
            module, _ = parse_fine_tuned_lora_name(name)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    answers.append(errors)
print(json.dumps(answers))
"""


@pytest.mark.vllm
def test_verdicts_agree_with_vllms_own_checks(crafted) -> None:
    """vLLM's PEFTHelper (validate_legal, under the --max-lora-rank the verdict names) and its
    weight-name parser, run in .venv-vllm, refuse exactly the adapters the verdict refuses."""
    import struct
    import subprocess

    from tests.serving.vllm_server import require_vllm_venv

    python = require_vllm_venv()
    lora = [
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
    ]
    base = {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj"]}
    cases = []
    for files in crafted.values():
        raw = files["adapter_model.safetensors"]
        header = json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])
        cases.append(
            (json.loads(files["adapter_config.json"]), sorted(set(header) - {"__metadata__"}))
        )
    cases += [
        ({**base, **extra}, names)
        for extra, names in [
            ({}, lora),
            ({"r": 24}, lora),
            ({"rank_pattern": {"q_proj": 64}}, lora),
            ({"use_rslora": True}, lora),
            ({"lora_bias": True}, lora),
            ({"alora_invocation_tokens": [5]}, lora),
            ({"layer_replication": [[0, 1]]}, lora),
            ({"use_qalora": True}, lora),
            ({"init_lora_weights": "pissa"}, lora),
            ({"init_lora_weights": "gaussian"}, lora),
            ({"bias": "all"}, lora),
            ({"modules_to_save": ["embed_tokens"]}, lora),
            ({}, [n.replace(".weight", ".default.weight") for n in lora]),
        ]
    ]
    cases.append(({"r": 8, "target_modules": ["q_proj"]}, lora))  # no lora_alpha
    verdicts = [vllm_verdict(config, names) for config, names in cases]
    payload = [
        (config, names, verdict["max_lora_rank"] or 512)
        for (config, names), verdict in zip(cases, verdicts, strict=True)
    ]
    child = subprocess.run(
        [str(python), "-c", _VLLM_CHECK],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    answers = json.loads(child.stdout.splitlines()[-1])
    for (config, _), verdict, errors in zip(cases, verdicts, answers, strict=True):
        assert verdict["ok"] == (not errors), (config, verdict["reasons"], errors)
    assert sum(not v["ok"] for v in verdicts) >= 12  # the refusals are exercised, not just oks


def test_submit_warns_when_continuing_an_adapter_vllm_refuses(client: TestClient, crafted) -> None:
    dora = _import(client, crafted["dora"], "dora")
    normal = _import(client, crafted["normal"], "normal")
    warned = client.post("/jobs", json=model_spec(lora_path="dora:1", lora_rank=None))
    assert warned.status_code == 201, warned.text
    assert warned.json()["warnings"] == [
        (
            f"actor.model.lora_path continues adapter {dora['id']} (dora:1), which vLLM refuses, "
            f"and the new version keeps its config: {'; '.join(dora['serving']['vllm']['reasons'])}"
        )
    ]
    fine = client.post("/jobs", json=model_spec(lora_path=normal["id"], lora_rank=None))
    assert fine.status_code == 201, fine.text
    assert fine.json()["warnings"] == []
