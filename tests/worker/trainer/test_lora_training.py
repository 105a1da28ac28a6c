"""LoRA training: what is trained, what is kept, what is written, and the user errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

from worker.demo import DEMO_MODEL_NAME
from worker.trainer import linear_module_names, resolve_model_dir
from worker.trainer.errors import UserError

LLAMA_LINEAR = [
    "down_proj",
    "gate_proj",
    "k_proj",
    "lm_head",
    "o_proj",
    "q_proj",
    "up_proj",
    "v_proj",
]


def _base(model_dir: Path):
    return AutoModelForCausalLM.from_pretrained(
        model_dir, local_files_only=True, dtype=torch.float32
    )


def _tensor_names(path: Path) -> list[str]:
    with safe_open(str(path), framework="pt") as handle:
        return list(handle.keys())


def test_new_lora_trains_only_lora_and_keeps_base_bit_identical(
    train, make_spec, demo_model_dir
) -> None:
    rank = 4
    result, hooks, session = train(make_spec({"actor": {"optim": {"weight_decay": 0.1}}}))
    assert (result.kind, result.rank, result.alpha, result.stopped) == ("lora", rank, 4.0, None)
    assert result.target_modules == LLAMA_LINEAR  # RLinf's default list, suffix-matched
    assert (result.step, result.total_steps) == (6, 6)

    fresh = _base(demo_model_dir)
    base_after = session.model.get_base_model()
    plain = {
        n.replace(".base_layer", ""): p
        for n, p in base_after.named_parameters()
        if "lora_" not in n
    }
    assert set(plain) == set(dict(fresh.named_parameters()))
    for name, original in fresh.named_parameters():
        assert torch.equal(plain[name], original), name
        assert not plain[name].requires_grad

    expected, lora_count = 0, 0
    lora = dict(session.model.named_parameters())
    for name, module in fresh.named_modules():
        if isinstance(module, torch.nn.Linear):
            expected += rank * (module.in_features + module.out_features)
            a = lora[f"base_model.model.{name}.lora_A.default.weight"]
            b = lora[f"base_model.model.{name}.lora_B.default.weight"]
            assert a.shape == (rank, module.in_features) and b.shape == (module.out_features, rank)
            assert a.requires_grad and b.requires_grad
            lora_count += 1
    assert lora_count == 15  # 7 per layer x 2 layers + lm_head
    trainable = sum(p.numel() for p in session.model.parameters() if p.requires_grad)
    assert trainable == result.trainable_params == expected
    assert result.total_params == expected + sum(p.numel() for p in fresh.parameters())

    config = json.loads((demo_model_dir / "config.json").read_text())
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    assert result.base_fingerprint == hashlib.sha256(canonical).hexdigest()
    assert any("trainable" in line for line in hooks.logs)
    assert any("fp32" in line for line in hooks.logs)  # CPU ignores the default bf16
    for step, (done, total, metrics) in enumerate(hooks.steps, start=1):
        assert (done, total) == (step, 6)
        assert {"loss", "lr", "grad_norm", "tokens_per_s", "epoch"} <= set(metrics)


def test_loss_falls_on_demo_dataset(train, make_spec) -> None:
    spec = make_spec({"actor": {"model": {"lora_rank": 8}}, "runner": {"max_steps": 50}})
    result, hooks, _ = train(spec)
    losses = hooks.losses
    assert len(losses) == 50
    first, last = losses[0], sum(losses[-10:]) / 10
    assert last < 0.7 * first, (first, last)
    assert result.metrics["loss"] == losses[-1]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # raised inside transformers for peft
def test_output_is_a_plain_peft_folder_with_lora_tensors_only(
    train, make_spec, demo_model_dir
) -> None:
    spec = make_spec(
        {"actor": {"model": {"target_modules": ["q_proj", "lm_head"], "lora_alpha": 8}}}
    )
    result, _, session = train(spec)
    folder = result.output_dir
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    names = _tensor_names(folder / "adapter_model.safetensors")
    assert len(names) == 2 * 3  # lora_A/lora_B for 2 q_proj and lm_head
    assert all(".lora_A." in n or ".lora_B." in n for n in names)
    assert not any(n.endswith("lm_head.weight") or "embed_tokens" in n for n in names)

    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == DEMO_MODEL_NAME
    assert (config["r"], config["lora_alpha"], config["peft_type"]) == (4, 8, "LORA")
    assert config["target_modules"] == ["lm_head", "q_proj"] == result.target_modules

    loaded = PeftModel.from_pretrained(_base(demo_model_dir), folder)
    loaded.eval()
    session.model.eval()
    ids = torch.tensor([[256, *b"reverse: cat\n"]])
    with torch.no_grad():
        assert torch.allclose(
            loaded(input_ids=ids).logits, session.model(input_ids=ids).logits, atol=1e-6
        )
        assert not torch.allclose(
            _base(demo_model_dir)(input_ids=ids).logits, loaded(input_ids=ids).logits
        )


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_narrow_targets_are_saved_so_a_reload_wraps_the_same_modules(
    train, make_spec, demo_model_dir
) -> None:
    spec = make_spec({"actor": {"model": {"target_modules": ["layers.0.self_attn.q_proj"]}}})
    result, _, _ = train(spec)
    assert result.target_modules == ["q_proj"]
    assert result.trainable_params == 4 * (64 + 64)
    config = json.loads((result.output_dir / "adapter_config.json").read_text())
    assert config["target_modules"] == ["model.layers.0.self_attn.q_proj"]  # "q_proj" would be 2
    loaded = PeftModel.from_pretrained(_base(demo_model_dir), result.output_dir)
    wrapped = [n for n, m in loaded.named_modules() if hasattr(m, "lora_A") and "lora_A" not in n]
    assert wrapped == ["base_model.model.model.layers.0.self_attn.q_proj"]


def test_gradient_accumulation_matches_one_large_batch(train, make_spec) -> None:
    def run(micro: int):
        spec = make_spec(
            {
                "actor": {"micro_batch_size": micro, "global_batch_size": 8},
                "runner": {"max_steps": 4},
            }
        )
        result, hooks, _ = train(spec)
        with safe_open(str(result.output_dir / "adapter_model.safetensors"), "pt") as handle:
            return hooks.losses, {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118

    (whole_losses, whole), (accum_losses, accum) = run(8), run(2)  # 1 x 8 and 4 x 2
    assert accum_losses == pytest.approx(whole_losses, rel=1e-5)
    assert whole.keys() == accum.keys()
    for name in whole:
        assert torch.allclose(whole[name], accum[name], atol=1e-4), name


def test_continue_from_adapter_keeps_its_config_and_its_progress(train, make_spec) -> None:
    # One batch holds the whole (capped) dataset, so every step sees the same data.
    whole = {"actor": {"micro_batch_size": 8, "global_batch_size": 16}, "data": {"max_samples": 16}}
    parent_spec = make_spec(
        {
            **whole,
            "actor": {
                **whole["actor"],
                "model": {
                    "lora_rank": 4,
                    "lora_alpha": 8,
                    "target_modules": ["q_proj", "v_proj", "lm_head"],
                },
            },
            "runner": {"max_steps": 15},
        }
    )
    parent, parent_hooks, _ = train(parent_spec)
    child_spec = make_spec(
        {
            **whole,
            "actor": {**whole["actor"], "model": {"lora_rank": None, "lora_path": "ad_parent"}},
            "runner": {"max_steps": 5},
        }
    )
    child, child_hooks, _ = train(child_spec, init_adapter_dir=parent.output_dir)

    first, last = parent_hooks.losses[0], parent_hooks.losses[-1]
    assert last < first - 0.5
    # A fresh adapter would start near `first`; the child starts where the parent stopped.
    assert abs(child_hooks.losses[0] - last) < 0.1 * (first - last), (
        first,
        last,
        child_hooks.losses[0],
    )
    assert (child.rank, child.alpha, child.target_modules) == (
        4,
        8.0,
        ["lm_head", "q_proj", "v_proj"],
    )
    config = json.loads((child.output_dir / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"]) == (4, 8)
    assert config["target_modules"] == ["lm_head", "q_proj", "v_proj"]
    assert child.trainable_params == parent.trainable_params
    assert child.step == 5


def test_linear_module_names(demo_model_dir) -> None:
    assert linear_module_names(_base(demo_model_dir)) == LLAMA_LINEAR


# ---------------------------------------------------------------------------- user errors


def test_model_not_found_names_the_places_looked(tmp_path: Path, demo_model_dir: Path) -> None:
    for path in ["no-such-model", str(tmp_path / "nowhere"), "../escape", "sub/dir"]:
        with pytest.raises(UserError) as info:
            resolve_model_dir(path, tmp_path)
        assert info.value.code == "model_not_found"
    with pytest.raises(UserError) as info:
        resolve_model_dir("no-such-model", tmp_path)
    assert str(tmp_path / "no-such-model") in info.value.message
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError) as info:
        resolve_model_dir("empty", tmp_path)
    assert "config.json" in info.value.message
    assert resolve_model_dir(str(demo_model_dir), tmp_path) == demo_model_dir


def test_pickle_only_model_is_refused(train, make_spec, tmp_path: Path, demo_model_dir) -> None:
    folder = tmp_path / "bin-only"
    folder.mkdir()
    for name in ["config.json", "tokenizer.json", "tokenizer_config.json"]:
        (folder / name).write_bytes((demo_model_dir / name).read_bytes())
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(UserError) as info:
        train(make_spec(), base_model_dir=folder)
    assert info.value.code == "invalid_model" and "model.safetensors" in info.value.message


def test_no_matching_modules_lists_the_linear_names(train, make_spec) -> None:
    with pytest.raises(UserError) as info:
        train(make_spec({"actor": {"model": {"target_modules": ["c_attn", "dense"]}}}))
    assert info.value.code == "no_matching_modules"
    for name in LLAMA_LINEAR:
        assert name in info.value.message


def test_unsupported_target_module(train, make_spec) -> None:
    with pytest.raises(UserError) as info:
        train(make_spec({"actor": {"model": {"target_modules": ["mlp"]}}}))
    assert info.value.code == "unsupported_target_module"


def test_rank_too_large_names_layer_and_shape(train, make_spec) -> None:
    with pytest.raises(UserError) as info:
        train(make_spec({"actor": {"model": {"lora_rank": 33}}}))  # k_proj is 64 -> 32
    assert info.value.code == "rank_too_large"
    assert "k_proj" in info.value.message and "64x32" in info.value.message
    train(make_spec({"actor": {"model": {"lora_rank": 32}}, "runner": {"max_steps": 1}}))


def test_invalid_adapter_folders(train, make_spec, tmp_path: Path) -> None:
    spec = make_spec({"actor": {"model": {"lora_rank": None, "lora_path": "x"}}})
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    (pickled / "adapter_model.bin").write_bytes(b"\x80\x04not really")
    with pytest.raises(UserError) as info:
        train(spec, init_adapter_dir=pickled)
    assert (
        info.value.code == "invalid_adapter" and "adapter_model.safetensors" in info.value.message
    )

    good, _, _ = train(make_spec({"runner": {"max_steps": 1}}))
    fat = Path(tmp_path / "fat")
    fat.mkdir()
    (fat / "adapter_config.json").write_bytes(
        (good.output_dir / "adapter_config.json").read_bytes()
    )
    with safe_open(str(good.output_dir / "adapter_model.safetensors"), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 (not a dict)
    tensors["base_model.model.lm_head.weight"] = torch.zeros(259, 64)
    save_file(tensors, str(fat / "adapter_model.safetensors"))
    with pytest.raises(UserError) as info:
        train(spec, init_adapter_dir=fat)
    assert info.value.code == "invalid_adapter" and "lm_head.weight" in info.value.message


def test_diverging_loss_fails_the_job_with_a_clear_error(train, make_spec) -> None:
    spec = make_spec(
        {"actor": {"optim": {"lr": 1e12, "clip_grad": None}}, "runner": {"max_steps": 20}}
    )
    with pytest.raises(UserError) as info:
        train(spec)
    assert info.value.code == "training_diverged" and "lr" in info.value.message
