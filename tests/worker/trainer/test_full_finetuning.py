"""Full fine-tuning: every weight trains and the result is a loadable HF model folder."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def test_full_finetuning_changes_weights_and_saves_a_loadable_model(
    train, make_spec, demo_model_dir
) -> None:
    spec = make_spec(
        {
            "actor": {"model": {"is_lora": False, "lora_rank": None}, "optim": {"lr": 1e-3}},
            "runner": {"max_steps": 4},
        }
    )
    result, hooks, _ = train(spec)
    assert (result.kind, result.rank, result.alpha, result.target_modules) == (
        "full",
        None,
        None,
        [],
    )
    assert result.trainable_params == result.total_params
    files = {p.name for p in result.output_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files
    assert not [name for name in files if name.endswith((".bin", ".pt", ".pth", ".pkl"))]

    trained = AutoModelForCausalLM.from_pretrained(result.output_dir, local_files_only=True)
    base = AutoModelForCausalLM.from_pretrained(demo_model_dir, local_files_only=True)
    trained_params = dict(trained.named_parameters())
    changed = [n for n, p in base.named_parameters() if not torch.equal(p, trained_params[n])]
    assert len(changed) == len(trained_params)  # every tensor moved
    assert result.total_params == sum(p.numel() for p in base.parameters())
    tokenizer = AutoTokenizer.from_pretrained(result.output_dir, local_files_only=True)
    assert tokenizer("ab", add_special_tokens=False)["input_ids"] == [97, 98]
    assert hooks.losses[-1] < hooks.losses[0]
