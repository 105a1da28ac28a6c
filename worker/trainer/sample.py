"""Inference for the kinds that are not training: the base model with an adapter (or bare) in
eval mode, and completions of prompts (`sample` jobs; the evaluations' greedy answers).

A plain prompt is tokenised as training tokenises it, `[bos] + prompt` (worker/trainer/data.py);
generation is `model.generate`: greedy (`do_sample=False`) at temperature 0, else sampled with
torch's generator seeded per prompt, so the same seed gives the same completions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from worker.trainer.hooks import StopRequest, TrainingHooks
from worker.trainer.model import load_causal_lm, load_lora, load_tokenizer

MAX_TEXT_CHARS = 4000  # of each text sent back (the server's bound)


def load_for_inference(base_model_dir: Path, adapter_dir: Path | None,
                       device: str) -> tuple[Any, Any]:
    """(tokenizer, model): the base in fp32, with the LoRA adapter when given, in eval mode."""
    tokenizer = load_tokenizer(base_model_dir)
    model = load_causal_lm(base_model_dir, torch.float32)
    if adapter_dir is not None:
        model = load_lora(model, adapter_dir)
    model.to(device)
    model.eval()
    return tokenizer, model


def prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """`[bos] + prompt` tokens, as a training sample's prompt part."""
    head = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return head + list(tokenizer(prompt, add_special_tokens=False)["input_ids"])


@torch.no_grad()
def generate(model: Any, tokenizer: Any, ids: Sequence[int], *, max_new_tokens: int,
             temperature: float = 0.0, seed: int = 0) -> list[int]:
    """The new tokens after `ids` (up to eos or max_new_tokens)."""
    device = next(model.parameters()).device
    input_ids = torch.tensor([list(ids)], dtype=torch.long, device=device)
    options: dict[str, Any] = {"do_sample": False}
    if temperature > 0:
        torch.manual_seed(seed)
        options = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                         max_new_tokens=max_new_tokens, pad_token_id=pad, **options)
    return out[0, input_ids.shape[1]:].tolist()


def decode(tokenizer: Any, ids: Sequence[int]) -> str:
    return tokenizer.decode(list(ids), skip_special_tokens=True)


def run_sample(base_model_dir: Path, adapter_dir: Path | None, prompts: Sequence[str], *,
               max_new_tokens: int, temperature: float, seed: int, device: str,
               hooks: TrainingHooks) -> tuple[list[dict[str, Any]], StopRequest | None]:
    """Completions of each prompt: ([{prompt, completion, tokens}], stop request if stopped)."""
    tokenizer, model = load_for_inference(base_model_dir, adapter_dir, device)
    hooks.log(f"sampling {len(prompts)} prompt(s), "
              + ("greedy" if temperature == 0 else f"temperature {temperature}, seed {seed}"))
    completions = []
    for index, prompt in enumerate(prompts):
        stop = hooks.should_stop()
        if stop:
            return completions, stop
        new = generate(model, tokenizer, prompt_ids(tokenizer, prompt),
                       max_new_tokens=max_new_tokens, temperature=temperature,
                       seed=seed * 1_000_003 + index)
        completions.append({"prompt": prompt[:MAX_TEXT_CHARS],
                            "completion": decode(tokenizer, new)[:MAX_TEXT_CHARS],
                            "tokens": len(new)})
        hooks.progress(index + 1, len(prompts), {"tokens": float(len(new))})
    return completions, None
