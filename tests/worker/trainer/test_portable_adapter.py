"""The trainer's adapter_config.json loads in peft 0.11.1 (RLinf's pin), in the newest peft and
through transformers' own adapter API; `base_model_name_or_path` names what others can resolve."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftConfig, PeftModel
from transformers import AutoModelForCausalLM

from tests import old_stack
from tests.old_stack import run_python
from tests.specs import worker_spec
from worker.demo import DEMO_MODEL_NAME, demo_dataset_path
from worker.trainer import TrainingInputs
from worker.trainer.adapter_config import (
    PEFT_0_11_LORA_FIELDS,
    base_model_reference,
    portable_adapter_config,
)
from worker.trainer.hooks import MetricsHooks
from worker.trainer.loop import TrainingSession

PROMPT = [256, *b"reverse: cat\n"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path) -> Path:
    """An adapter trained by the worker's trainer on the demo, default targets (with lm_head)."""
    work = tmp_path_factory.mktemp("portable")
    spec = {
        "actor": {
            "micro_batch_size": 8, "global_batch_size": 8, "seed": 1,
            "model": {"model_path": DEMO_MODEL_NAME, "is_lora": True, "lora_rank": 4},
            "optim": {"lr": 1e-2},
        },
        "data": {"max_length": 64},
        "runner": {"max_steps": 6, "save_interval": -1},
    }  # fmt: skip
    inputs = TrainingInputs(
        base_model_dir=demo_model_dir, train_files=[demo_dataset_path()], val_files=[],
        init_adapter_dir=None, resume_dir=None, work_dir=work / "work", device="cpu",
    )  # fmt: skip
    result = TrainingSession(worker_spec(spec), inputs, MetricsHooks()).run()
    return Path(shutil.copytree(result.output_dir, work / "adapter"))


def _base(demo_model_dir: Path):
    return AutoModelForCausalLM.from_pretrained(demo_model_dir, dtype=torch.float32).eval()


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([PROMPT])).logits


def test_saved_config_holds_only_fields_every_peft_knows(trained: Path) -> None:
    config = json.loads((trained / "adapter_config.json").read_text(encoding="utf-8"))
    assert set(config) <= PEFT_0_11_LORA_FIELDS, set(config) - PEFT_0_11_LORA_FIELDS
    assert "peft_version" not in config and "alora_invocation_tokens" not in config
    assert (config["peft_type"], config["task_type"], config["r"]) == ("LORA", "CAUSAL_LM", 4)
    assert config["base_model_name_or_path"] == DEMO_MODEL_NAME  # no hub id in its config.json
    assert "lm_head" in config["target_modules"] and config["inference_mode"] is True


def test_a_new_field_is_left_out_only_at_its_default() -> None:
    defaults = LoraConfig().to_dict()
    config = {
        "r": 8, "lora_alpha": 8, "bias": "none", "use_dora": False,  # 0.11 knows: always kept
        "alora_invocation_tokens": None, "lora_bias": False, "qalora_group_size": 16,
        "exclude_modules": ["lm_head"],  # a feature 0.11 lacks, in use: kept
        "peft_version": "0.21.2",
    }  # fmt: skip
    assert portable_adapter_config(config, defaults) == {
        "r": 8, "lora_alpha": 8, "bias": "none", "use_dora": False,
        "exclude_modules": ["lm_head"],
    }  # fmt: skip
    assert portable_adapter_config({"lora_bias": True}, defaults) == {"lora_bias": True}
    assert portable_adapter_config({"qalora_group_size": 0}, defaults) == {"qalora_group_size": 0}


@pytest.mark.parametrize(
    ("own", "expected"),
    [
        ("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"),
        ("/srv/models/qwen", "registry-name"),
        ("./qwen", "registry-name"),
        ("https://example.com/org/name", "registry-name"),
        ("", "registry-name"),
        (None, "registry-name"),
    ],
)
def test_base_model_reference(tmp_path: Path, own: str | None, expected: str) -> None:
    config = {"model_type": "llama"} | ({} if own is None else {"_name_or_path": own})
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert base_model_reference(tmp_path, "registry-name") == expected


def test_adapter_of_a_hub_model_names_its_hub_id(train, make_spec, demo_model_dir, tmp_path):
    copy = Path(shutil.copytree(demo_model_dir, tmp_path / "local-copy"))
    config = json.loads((copy / "config.json").read_text(encoding="utf-8"))
    (copy / "config.json").write_text(json.dumps({**config, "_name_or_path": "acme/tiny-llama"}))
    result, _, _ = train(make_spec({"runner": {"max_steps": 1}}), base_model_dir=copy)
    saved = json.loads((result.output_dir / "adapter_config.json").read_text(encoding="utf-8"))
    assert saved["base_model_name_or_path"] == "acme/tiny-llama"


def test_newest_peft_loads_it_to_the_trained_logits(trained: Path, demo_model_dir: Path) -> None:
    assert isinstance(PeftConfig.from_pretrained(str(trained)), LoraConfig)
    base_logits = _logits(_base(demo_model_dir))
    tuned = _logits(PeftModel.from_pretrained(_base(demo_model_dir), str(trained)).eval())
    assert not torch.allclose(tuned, base_logits, atol=1e-4)


def test_transformers_adapter_api_switches_the_adapter_on_and_off(
    trained: Path, demo_model_dir: Path
) -> None:
    """`load_adapter`, `set_adapter`, `disable_adapters` and `enable_adapters` of transformers
    itself (under the project's pins) on the demo base."""
    base_logits = _logits(_base(demo_model_dir))
    peft_logits = _logits(PeftModel.from_pretrained(_base(demo_model_dir), str(trained)).eval())
    model = _base(demo_model_dir)
    model.load_adapter(str(trained), adapter_name="trained")
    model.set_adapter("trained")
    assert model.active_adapters() == ["trained"]
    assert torch.allclose(_logits(model), peft_logits, atol=1e-5)
    assert not torch.allclose(_logits(model), base_logits, atol=1e-4)
    model.disable_adapters()
    assert torch.allclose(_logits(model), base_logits, atol=1e-6)
    model.enable_adapters()
    assert torch.allclose(_logits(model), peft_logits, atol=1e-5)


_OLD_PEFT_LOAD = """
import json, peft, torch, transformers
from peft import LoraConfig, PeftModel
from transformers import AutoModelForCausalLM
config = LoraConfig.from_pretrained({adapter!r})
base = AutoModelForCausalLM.from_pretrained({base!r}, torch_dtype=torch.float32).eval()
model = PeftModel.from_pretrained(base, {adapter!r}).eval()
with torch.no_grad():
    logits = model(input_ids=torch.tensor([{prompt!r}])).logits
print(json.dumps({{"peft": peft.__version__, "transformers": transformers.__version__,
                  "r": config.r, "targets": sorted(config.target_modules),
                  "logits": logits[0, -1].tolist()}}))
"""


@pytest.mark.compat
def test_peft_0_11_loads_it_to_the_same_logits(trained: Path, demo_model_dir: Path) -> None:
    """RLinf's stack (peft 0.11.1 on transformers 4.46, pip-installed into a directory of its
    own) reads the config with its LoraConfig and applies the adapter as the newest peft does."""
    code = _OLD_PEFT_LOAD.format(adapter=str(trained), base=str(demo_model_dir), prompt=PROMPT)
    out = json.loads(run_python(code, first_on_path=old_stack.installed()).splitlines()[-1])
    assert (out["peft"], out["transformers"][:2]) == ("0.11.1", "4.")
    saved = json.loads((trained / "adapter_config.json").read_text(encoding="utf-8"))
    assert out["r"] == 4 and out["targets"] == sorted(saved["target_modules"])
    newest = _logits(PeftModel.from_pretrained(_base(demo_model_dir), str(trained)).eval())
    assert torch.allclose(torch.tensor(out["logits"]), newest[0, -1], atol=1e-5)
