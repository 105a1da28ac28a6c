"""The registry's rules for an adapter's files, one code path for workers and imports:
adapter_config.json, the safetensors index, every LoRA tensor's shape against the rank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save

from service.artifacts import LocalArtifactStore
from service.errors import InvalidArtifact
from service.registry.register import check_adapter_files
from tests.factories import put

LAYER = "base_model.model.model.layers.0"


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def files(store: LocalArtifactStore, shapes: dict[str, list[int]], **config):
    cfg = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], **config}
    weights = save({name: torch.zeros(shape) for name, shape in shapes.items()})
    return [put(store, "adapter_config.json", json.dumps(cfg).encode()),
            put(store, "adapter_model.safetensors", weights)]


def linear(module: str, rank: int, n_in: int = 32, n_out: int = 16) -> dict[str, list[int]]:
    return {f"{LAYER}.{module}.lora_A.weight": [rank, n_in],
            f"{LAYER}.{module}.lora_B.weight": [n_out, rank]}


def test_consistent_shapes_pass_and_say_what_they_hold(store: LocalArtifactStore):
    shapes = {**linear("self_attn.q_proj", 4), **linear("mlp.down_proj", 8),
              "base_model.model.model.embed_tokens.lora_embedding_A": [4, 64],
              "base_model.model.model.embed_tokens.lora_embedding_B": [32, 4],
              f"{LAYER}.self_attn.q_proj.lora_B.bias": [16]}
    checked = check_adapter_files(store, "lora", files(store, shapes,
                                                       rank_pattern={"down_proj": 8}))
    assert (checked.rank, checked.alpha, checked.lora_modules) == (4, 8.0, 3)
    assert checked.target_modules == ["q_proj"]


@pytest.mark.parametrize(("shapes", "config", "code", "phrase"), [
    (linear("self_attn.q_proj", 5), {}, "tensor_shape_mismatch", "with r=4"),
    ({**linear("self_attn.q_proj", 4), f"{LAYER}.self_attn.q_proj.lora_B.weight": [16, 3]}, {},
     "tensor_shape_mismatch", "lora_B weight is [out_features, r]"),
    ({f"{LAYER}.self_attn.q_proj.lora_A.weight": [4, 32]}, {}, "tensor_shape_mismatch",
     "has no lora_B"),
    (linear("mlp.down_proj", 4), {"rank_pattern": {"down_proj": 8}}, "tensor_shape_mismatch",
     "with r=8"),
    (linear("self_attn.q_proj", 4), {"r": 0}, "invalid_adapter_config", "got 0"),
    (linear("self_attn.q_proj", 4), {"r": "4"}, "invalid_adapter_config", "positive integer"),
    (linear("self_attn.q_proj", 4), {"peft_type": "IA3"}, "invalid_adapter_config", "LORA"),
    (linear("self_attn.q_proj", 4), {"lora_alpha": -1}, "invalid_adapter_config", "lora_alpha"),
    (linear("self_attn.q_proj", 4), {"rank_pattern": {"q": 0}}, "invalid_adapter_config",
     "rank_pattern"),
])
def test_inconsistent_files_are_refused(
    store: LocalArtifactStore, shapes: dict, config: dict, code: str, phrase: str
):
    with pytest.raises(InvalidArtifact) as info:
        check_adapter_files(store, "lora", files(store, shapes, **config))
    assert info.value.code == code and phrase in info.value.message, info.value.message


def test_a_worker_result_is_held_to_the_same_shapes(store: LocalArtifactStore):
    """The worker's announced rank agrees with the config but not with the tensors."""
    with pytest.raises(InvalidArtifact) as info:
        check_adapter_files(store, "lora", files(store, linear("self_attn.q_proj", 2)), rank=4)
    assert info.value.code == "tensor_shape_mismatch"
