"""What the serving tests compare vLLM with: peft's greedy tokens, in the project's venv."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM


def load_base(model_dir: Path) -> torch.nn.Module:
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()


@torch.no_grad()
def greedy_tokens(model: torch.nn.Module, prompt: list[int], n: int) -> list[int]:
    """The `n` next tokens, each the argmax of the logits (no end-of-sequence stop: vLLM is
    asked with ignore_eos)."""
    ids = torch.tensor([prompt])
    out: list[int] = []
    for _ in range(n):
        token = int(model(input_ids=ids).logits[0, -1].argmax())
        out.append(token)
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return out


def peft_greedy(model_dir: Path, adapter_dir: Path | None, prompts: list[list[int]],
                n: int) -> list[list[int]]:
    """Greedy tokens of the base model (adapter_dir None) or of it with a PEFT adapter."""
    model = load_base(model_dir)
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, adapter_dir).eval()
    return [greedy_tokens(model, p, n) for p in prompts]
