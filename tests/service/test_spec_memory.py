"""The memory keys of an RLinf config: parsed, normalised, and no longer listed as ignored."""

from __future__ import annotations

import pytest

from service.errors import InvalidSpec
from service.spec import parse_spec

MODEL = {"model_path": "demo-tiny-llama", "is_lora": True, "lora_rank": 8}


def _actor(**actor) -> dict:
    return {"actor": {"model": MODEL, **actor}}


def test_fsdp_memory_keys_are_applied_and_the_rest_of_fsdp_config_is_ignored() -> None:
    parsed = parse_spec(_actor(fsdp_config={
        "strategy": "fsdp", "sharding_strategy": "full_shard", "use_orig_params": False,
        "gradient_checkpointing": True,
        "mixed_precision": {"param_dtype": "bfloat16", "reduce_dtype": "float32",
                            "buffer_dtype": "fp32"},
        "amp_autocast": {"enabled": False}, "grad_scaler": {"enabled": False},
    }))
    assert parsed.ignored_keys == [
        "actor.fsdp_config.amp_autocast", "actor.fsdp_config.grad_scaler",
        "actor.fsdp_config.strategy", "actor.fsdp_config.use_orig_params",
    ]
    assert parsed.spec.actor.fsdp_config.sharding_strategy == "full_shard"
    fsdp = parsed.spec.actor.fsdp_config
    assert fsdp.gradient_checkpointing is True
    # torch's dtype names are stored as RLinf's, so the worker sees one spelling
    assert fsdp.mixed_precision.model_dump() == {
        "param_dtype": "bf16", "reduce_dtype": "fp32", "buffer_dtype": "fp32"}


def test_model_gradient_checkpointing_and_precision_default_to_unset() -> None:
    spec = parse_spec({"actor": {"model": {**MODEL, "gradient_checkpointing": True}}}).spec
    assert spec.actor.model.gradient_checkpointing is True
    assert spec.actor.model.precision is None  # the worker picks bf16 on a GPU, fp32 on a CPU
    assert spec.actor.fsdp_config.mixed_precision.param_dtype is None


def test_null_sections_of_rlinf_defaults_are_accepted() -> None:
    spec = parse_spec(_actor(fsdp_config={"mixed_precision": None})).spec
    assert spec.actor.fsdp_config.mixed_precision.param_dtype is None
    assert parse_spec(_actor(fsdp_config=None)).spec.actor.fsdp_config.gradient_checkpointing is None


@pytest.mark.parametrize(("fsdp", "message"), [
    ({"gradient_checkpoiting": True},
     ("unknown key 'gradient_checkpoiting' in actor.fsdp_config; "
      "did you mean 'gradient_checkpointing'?")),
    ({"mixed_precision": {"param_dtyp": "bf16"}},
     "unknown key 'param_dtyp' in actor.fsdp_config.mixed_precision; did you mean 'param_dtype'?"),
])
def test_typos_in_the_applied_keys_are_refused(fsdp: dict, message: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(_actor(fsdp_config=fsdp))
    assert caught.value.message == message


def test_an_unknown_dtype_is_refused() -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(_actor(fsdp_config={"mixed_precision": {"param_dtype": "fp8"}}))
    assert caught.value.errors[0]["loc"] == "actor.fsdp_config.mixed_precision.param_dtype"
    assert "'fp32', 'bf16' or 'fp16'" in caught.value.message
