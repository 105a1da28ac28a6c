"""Precision as asked: bf16/fp16 base weights for LoRA with fp32 LoRA and AdamW state, fp32
masters under autocast for full fine-tuning, the fp16 grad scaler, and exact resume in each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from worker.trainer import checkpoint as ckpt

LORA_20 = {"runner": {"max_steps": 20}, "actor": {"optim": {"lr": 5e-3}}}
# 40 samples, batches 8 = 2 x 4, checkpoints every 3 steps, dropout and clipping in play.
RESUMABLE = {
    "actor": {
        "micro_batch_size": 4,
        "global_batch_size": 8,
        "model": {"lora_dropout": 0.1},
        "optim": {"lr": 5e-3, "lr_scheduler": "cosine", "lr_warmup_steps": 2, "clip_grad": 0.5},
    },
    "data": {"max_samples": 40},
    "runner": {"max_steps": 6, "save_interval": 3},
}
FULL = {"is_lora": False, "lora_rank": None}


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _dtypes(path: Path) -> set[torch.dtype]:
    with safe_open(str(path), framework="pt") as handle:
        return {handle.get_tensor(name).dtype for name in handle.keys()}  # noqa: SIM118


def _applied(hooks) -> str:
    [line] = [line for line in hooks.logs if line.startswith("applied: ")]
    return line


def test_bf16_base_is_held_in_bf16_kept_bit_identical_and_lora_stays_fp32(
    train, make_spec, demo_model_dir
) -> None:
    result, hooks, session = train(
        make_spec({**LORA_20, "actor": {**LORA_20["actor"], "model": {"precision": "bf16"}}})
    )
    assert _applied(hooks).startswith(
        "applied: base weights bf16, LoRA weights and AdamW state fp32"
    )
    fresh = AutoModelForCausalLM.from_pretrained(
        demo_model_dir, local_files_only=True, dtype=torch.bfloat16
    )
    base = {
        n.replace(".base_layer", ""): p
        for n, p in session.model.get_base_model().named_parameters()
        if "lora_" not in n
    }
    for name, original in fresh.named_parameters():
        assert base[name].dtype == torch.bfloat16, name
        assert torch.equal(base[name], original), name
    trainable = [p for p in session.model.parameters() if p.requires_grad]
    assert trainable and {p.dtype for p in trainable} == {torch.float32}
    states = session.optimizer.state.values()
    assert {t.dtype for s in states for t in (s["exp_avg"], s["exp_avg_sq"])} == {torch.float32}
    assert _dtypes(result.output_dir / "adapter_model.safetensors") == {torch.float32}

    _, fp32_hooks, _ = train(make_spec({**LORA_20, "actor": {**LORA_20["actor"],
                                                           "model": {"precision": "fp32"}}}))
    assert _applied(fp32_hooks).startswith("applied: base weights fp32")
    assert hooks.losses[-1] < hooks.losses[0] - 1.0  # it learns
    for bf16_loss, fp32_loss in zip(hooks.losses, fp32_hooks.losses, strict=True):
        assert bf16_loss == pytest.approx(fp32_loss, rel=0.02, abs=0.02)
    assert hooks.losses != fp32_hooks.losses  # bf16 really computed in bf16


def test_fp16_lora_trains_with_a_grad_scaler_saved_in_checkpoints(
    train, make_spec, hooks_cls, tmp_path
) -> None:
    hooks = hooks_cls(keep_dir=tmp_path / "kept")
    _, hooks, session = train(
        make_spec({"actor": {"model": {"precision": "fp16"}},
                   "runner": {"max_steps": 4, "save_interval": 2}}),
        hooks=hooks,
    )
    assert "fp16 grad scaler" in _applied(hooks)
    assert session.scaler is not None and session.scaler.get_scale() > 1
    assert {p.dtype for p in session.model.parameters() if not p.requires_grad} == {torch.float16}
    state = json.loads((hooks.kept[2] / ckpt.TRAINER_STATE).read_text())
    assert state["precision"] == "fp16" and state["grad_scaler"]["scale"] > 1


def test_full_fine_tuning_keeps_fp32_masters_and_computes_in_bf16(train, make_spec) -> None:
    seen: list[torch.dtype] = []
    spec = make_spec({"actor": {"model": {**FULL, "precision": "bf16"}, "optim": {"lr": 1e-3}},
                      "runner": {"max_steps": 3}})
    result, hooks, session = train(spec)
    assert _applied(hooks).startswith(
        "applied: master weights and AdamW state fp32, compute bf16 (autocast)"
    )
    assert {p.dtype for p in session.model.parameters()} == {torch.float32}
    layer = session.model.model.layers[0].self_attn.q_proj
    handle = layer.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    try:
        batch = session._micro_batches(session.train_examples[:2])[0]
        session._loss_sum(batch)
    finally:
        handle.remove()
    assert seen == [torch.bfloat16]
    assert _dtypes(next(result.output_dir.glob("*.safetensors"))) == {torch.float32}


def test_fsdp_mixed_precision_wins_and_buffers_are_cast(train, make_spec) -> None:
    spec = make_spec({
        "actor": {
            "model": {"precision": "fp32"},
            "fsdp_config": {"mixed_precision": {"param_dtype": "bf16", "reduce_dtype": "bf16",
                                                "buffer_dtype": "bf16"}},
        },
        "runner": {"max_steps": 1},
    })
    _, hooks, session = train(spec)
    assert _applied(hooks).startswith("applied: base weights bf16")
    assert "buffers bf16" in _applied(hooks)
    assert any("reduce_dtype bf16 applies to the reduction across devices" in line
               for line in hooks.logs)
    buffers = dict(session.model.named_buffers())
    assert buffers and {b.dtype for b in buffers.values() if b.is_floating_point()} == {
        torch.bfloat16
    }


def test_no_precision_means_fp32_on_cpu(train, make_spec) -> None:
    _, hooks, _ = train(make_spec({"runner": {"max_steps": 1}}))
    assert _applied(hooks).startswith("applied: base weights fp32")
    assert not any("ignored" in line for line in hooks.logs)


@pytest.mark.parametrize(
    ("precision", "lora"), [("bf16", True), ("fp16", True), ("bf16", False)]
)
def test_resume_after_crash_is_bit_identical_in_each_precision(
    train, make_spec, hooks_cls, tmp_path, precision, lora
) -> None:
    model = {"precision": precision, **({} if lora else FULL)}
    spec = make_spec({**RESUMABLE, "actor": {**RESUMABLE["actor"],
                                             "model": {**RESUMABLE["actor"]["model"], **model}}})
    straight, straight_hooks, _ = train(spec)
    crashing = hooks_cls(crash_at=4, keep_dir=tmp_path / "uploaded")
    with pytest.raises(hooks_cls.Crash):
        train(spec, hooks=crashing)
    torch.manual_seed(999)  # a fresh process would not share the crashed run's RNG
    resumed_hooks = hooks_cls()
    resumed, _, _ = train(spec, hooks=resumed_hooks, resume_dir=crashing.kept[3])
    assert [s for s, _, _ in resumed_hooks.steps] == [4, 5, 6]
    assert resumed_hooks.losses == straight_hooks.losses[3:]
    assert _files(resumed.output_dir) == _files(straight.output_dir)
