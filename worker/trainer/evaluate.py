"""Evaluations: loss, perplexity and exact match of greedy answers on a dataset.

Rows are read and tokenised by the training data module (worker/trainer/data.py), so the loss
is the one training reports: mean cross-entropy over answer (assistant) tokens, prompt
tokens masked. Over the whole set it is token-weighted (sum of token losses / answer tokens),
perplexity its exp. Exact match generates greedily from the prompt part, `[bos] + prompt` for a
pair, the chat template's rendering of the turns before the last assistant turn (with its
generation cue) for a conversation or a pair under `apply_chat_template`, and compares the
decoded answer with the reference (the answer, or the last assistant turn), outer whitespace
aside.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from worker.trainer.chat import generation_prompt, pair_messages, require_chat_template
from worker.trainer.data import IGNORE_INDEX, Row, read_rows, tokenize_rows
from worker.trainer.errors import UserError
from worker.trainer.hooks import StopRequest, TrainingHooks
from worker.trainer.sample import (
    MAX_TEXT_CHARS,
    decode,
    generate,
    load_for_inference,
    prompt_ids,
)

MAX_EXAMPLES_KEPT = 1000  # per-row results sent back (the server's bound)


def _generation_input(tokenizer: Any, row: Row, chat: bool) -> tuple[list[int], str]:
    """(prompt tokens, reference answer) of one row."""
    if row.messages is not None:
        last = max(i for i, m in enumerate(row.messages) if m["role"] == "assistant")
        text = generation_prompt(tokenizer, row.messages[:last])
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return list(ids), row.messages[last]["content"]
    if chat:
        text = generation_prompt(tokenizer, pair_messages(row.prompt, row.answer)[:1])
        return list(tokenizer(text, add_special_tokens=False)["input_ids"]), row.answer
    return prompt_ids(tokenizer, row.prompt), row.answer


@torch.no_grad()
def _token_losses(model: Any, input_ids: list[int], labels: list[int]) -> tuple[float, int]:
    """(sum of the answer tokens' cross-entropy, their count) of one tokenised row."""
    device = next(model.parameters()).device
    ids = torch.tensor([input_ids], dtype=torch.long, device=device)
    target = torch.tensor([labels[1:]], dtype=torch.long, device=device)
    logits = model(input_ids=ids).logits[:, :-1].float()
    total = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
        ignore_index=IGNORE_INDEX, reduction="sum")
    return float(total), int((target != IGNORE_INDEX).sum())


def _perplexity(loss: float | None) -> float | None:
    if loss is None:
        return None
    return math.exp(loss) if loss < 700 else math.inf  # inf is sent as null


def run_evaluation(spec: Any, base_model_dir: Path, adapter_dir: Path | None,
                   files: Sequence[Path], *, max_new_tokens: int, device: str,
                   hooks: TrainingHooks) -> tuple[dict[str, Any] | None, StopRequest | None]:
    """(results, None) when done, (None, stop request) when asked to stop."""
    data = spec.data
    rows = read_rows(files, data.prompt_key, data.answer_key, data.messages_key)
    if data.max_samples != -1:
        rows = rows[: data.max_samples]
    names = ", ".join(Path(f).name for f in files)
    if not rows:
        raise UserError(f"the evaluation dataset ({names}) has no rows", code="dataset_empty")
    tokenizer, model = load_for_inference(base_model_dir, adapter_dir, device)
    name = spec.actor.model.model_path
    if data.apply_chat_template:
        require_chat_template(tokenizer, name, "apply_chat_template is true")
    elif any(r.messages is not None for r in rows):
        where = next(r.where for r in rows if r.messages is not None)
        require_chat_template(tokenizer, name, f"{where} is a conversation")
    hooks.log(f"evaluating {len(rows)} row(s) of {names}"
              + (" with the adapter" if adapter_dir else " on the bare base model"))
    examples: list[dict[str, Any]] = []
    nll, tokens, matches = 0.0, 0, 0
    for index, row in enumerate(rows):
        stop = hooks.should_stop()
        if stop:
            return None, stop
        tokenised, _ = tokenize_rows([row], tokenizer, max_length=data.max_length,
                                     append_eos=data.append_eos,
                                     apply_chat_template=data.apply_chat_template)
        row_nll, row_tokens = (_token_losses(model, tokenised[0].input_ids, tokenised[0].labels)
                               if tokenised else (0.0, 0))
        nll, tokens = nll + row_nll, tokens + row_tokens
        ids, reference = _generation_input(tokenizer, row, data.apply_chat_template)
        prediction = decode(tokenizer, generate(model, tokenizer, ids,
                                                max_new_tokens=max_new_tokens))
        exact = prediction.strip() == reference.strip()
        matches += exact
        if len(examples) < MAX_EXAMPLES_KEPT:
            examples.append({
                "index": index, "loss": row_nll / row_tokens if row_tokens else None,
                "tokens": row_tokens, "prediction": prediction[:MAX_TEXT_CHARS],
                "reference": reference[:MAX_TEXT_CHARS], "exact_match": exact})
        hooks.progress(index + 1, len(rows), {"exact_match": matches / (index + 1)})
    loss = nll / tokens if tokens else None
    results = {
        "loss": loss, "perplexity": _perplexity(loss),
        "exact_match": matches / len(rows), "exact_matches": matches, "rows": len(rows),
        "tokens": tokens, "examples": examples}
    hooks.log(f"loss {loss}, exact match {matches}/{len(rows)}")
    return results, None
