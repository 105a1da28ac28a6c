"""The trainer on a CUDA device: mixed precision, grad scaling, checkpoints with CUDA RNG state.

Run by bench/gpu_check.sh; skipped where there is no CUDA device.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors import safe_open
from transformers import AutoModelForCausalLM

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (not a dict)


def test_lora_bf16_on_cuda_learns_and_keeps_base(train, make_spec, demo_model_dir) -> None:
    spec = make_spec(
        {"actor": {"model": {"lora_rank": 8, "precision": "bf16"}}, "runner": {"max_steps": 40}}
    )
    result, hooks, session = train(spec, device="cuda")
    assert not any("fp32" in line for line in hooks.logs)  # autocast is on
    assert sum(hooks.losses[-5:]) / 5 < 0.8 * hooks.losses[0]
    assert all(p.dtype == torch.float32 for p in session.model.parameters() if p.requires_grad)

    fresh = AutoModelForCausalLM.from_pretrained(demo_model_dir, local_files_only=True)
    base = session.model.get_base_model()
    plain = {
        n.replace(".base_layer", ""): p for n, p in base.named_parameters() if "lora_" not in n
    }
    for name, original in fresh.named_parameters():
        assert torch.equal(plain[name].cpu(), original), name

    loaded = PeftModel.from_pretrained(fresh, result.output_dir)  # a GPU adapter loads on CPU
    ids = torch.tensor([[256, *b"upper: cat\n"]])
    session.model.eval()
    with torch.no_grad():
        on_gpu = session.model(input_ids=ids.cuda()).logits.float().cpu()
        on_cpu = loaded(input_ids=ids).logits
    assert torch.allclose(on_gpu, on_cpu, atol=1e-4)


def test_fp16_trains_with_a_grad_scaler_in_the_checkpoint(
    train, make_spec, hooks_cls, tmp_path
) -> None:
    spec = make_spec(
        {"actor": {"model": {"precision": "fp16"}}, "runner": {"max_steps": 6, "save_interval": 3}}
    )
    hooks = hooks_cls(keep_dir=tmp_path / "kept")
    train(spec, device="cuda", hooks=hooks)
    assert all(torch.isfinite(torch.tensor(loss)) for loss in hooks.losses)
    state = json.loads((hooks.kept[3] / "trainer_state.json").read_text())
    assert state["grad_scaler"]["scale"] > 0
    assert "torch_cuda.0" in _tensors(hooks.kept[3] / "rng_state.safetensors")


def test_cuda_crash_resume_continues_the_same_run(train, make_spec, hooks_cls, tmp_path) -> None:
    spec = make_spec(
        {
            "actor": {
                "micro_batch_size": 4,
                "global_batch_size": 8,
                "model": {"lora_dropout": 0.1, "precision": "fp32"},
                "optim": {"lr_scheduler": "cosine", "lr_warmup_steps": 2},
            },
            "data": {"max_samples": 40},
            "runner": {"max_epochs": 2, "max_steps": -1, "save_interval": 4},
        }
    )
    straight, straight_hooks, _ = train(spec, device="cuda")
    crashing = hooks_cls(crash_at=6, keep_dir=tmp_path / "kept")
    with pytest.raises(hooks_cls.Crash):
        train(spec, device="cuda", hooks=crashing)
    resumed_hooks = hooks_cls()
    resumed, _, _ = train(spec, device="cuda", hooks=resumed_hooks, resume_dir=crashing.kept[4])
    assert resumed.step == straight.step == 10
    assert resumed_hooks.losses == pytest.approx(straight_hooks.losses[4:], rel=1e-4)
    a = _tensors(straight.output_dir / "adapter_model.safetensors")
    b = _tensors(resumed.output_dir / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5), name


def test_full_finetuning_bf16_on_cuda(train, make_spec) -> None:
    spec = make_spec(
        {
            "actor": {
                "model": {"is_lora": False, "lora_rank": None, "precision": "bf16"},
                "optim": {"lr": 1e-3},
            },
            "runner": {"max_steps": 4},
        }
    )
    result, hooks, _ = train(spec, device="cuda")
    assert result.kind == "full" and hooks.losses[-1] < hooks.losses[0]
    reloaded = AutoModelForCausalLM.from_pretrained(result.output_dir, local_files_only=True)
    assert next(reloaded.parameters()).dtype == torch.float32
