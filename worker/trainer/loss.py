"""Cross-entropy over the answer tokens, in chunks: the fp32 logits of a whole batch never exist.

The decoder body gives hidden states; only the positions that carry a label go through the
output head, a chunk of tokens at a time, each chunk under activation checkpointing so that its
logits are freed after the forward and recomputed in the backward. Peak logits memory is one
chunk (`LOSS_CHUNK_BYTES` of fp32), whatever the batch, sequence length or vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from peft import PeftModel
from torch import nn
from torch.utils.checkpoint import checkpoint

from worker.trainer.data import IGNORE_INDEX

LOSS_CHUNK_BYTES = 64 << 20  # fp32 logits of one chunk: 64 MiB (~110 tokens of a 150k vocab)
MIN_CHUNK_TOKENS, MAX_CHUNK_TOKENS = 16, 8192


def chunk_tokens(vocab_size: int, budget_bytes: int = LOSS_CHUNK_BYTES) -> int:
    """Tokens per loss chunk so that their fp32 logits fit in `budget_bytes`."""
    return max(MIN_CHUNK_TOKENS, min(MAX_CHUNK_TOKENS, budget_bytes // (4 * max(1, vocab_size))))


def _logit_transform(config: object) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """What the model's own forward does to the head's output (Gemma softcap, Cohere, Granite)."""
    cap = getattr(config, "final_logit_softcapping", None)
    if cap:
        return lambda logits: torch.tanh(logits / cap) * cap
    scale = getattr(config, "logit_scale", None)
    if isinstance(scale, (int, float)) and scale != 1:
        return lambda logits: logits * scale
    divisor = getattr(config, "logits_scaling", None)
    if isinstance(divisor, (int, float)) and divisor != 1:
        return lambda logits: logits / divisor
    return None


class ChunkedLoss:
    """Summed cross-entropy of a causal LM on the labelled positions, computed in chunks."""

    def __init__(self, model: nn.Module, *, budget_bytes: int = LOSS_CHUNK_BYTES) -> None:
        base = model.get_base_model() if isinstance(model, PeftModel) else model
        self.model = model
        self.body = getattr(base, base.base_model_prefix)
        self.head = base.get_output_embeddings()
        self.transform = _logit_transform(base.config)
        self.vocab_size = int(self.head.weight.shape[0]) if self.head is not None else 0
        self.chunk = chunk_tokens(self.vocab_size, budget_bytes)
        self.chunked = self.head is not None  # set to False by `check` when it disagrees

    def _piece(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self.head(hidden).float()
        if self.transform is not None:
            logits = self.transform(logits)
        return F.cross_entropy(logits, labels, reduction="sum")

    def __call__(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Summed cross-entropy over the positions whose next-token label is not ignored."""
        if not self.chunked:
            logits = self.model(
                input_ids=input_ids, attention_mask=attention_mask, use_cache=False
            ).logits
            return F.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                labels[:, 1:].reshape(-1),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            )
        hidden = self.body(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False
        ).last_hidden_state
        targets = labels[:, 1:]
        keep = targets != IGNORE_INDEX
        hidden = hidden[:, :-1][keep]  # [answer tokens, hidden]: prompt positions need no head
        targets = targets[keep]
        total = hidden.new_zeros((), dtype=torch.float32)
        recompute = torch.is_grad_enabled()
        for start in range(0, targets.numel(), self.chunk):
            h, y = hidden[start : start + self.chunk], targets[start : start + self.chunk]
            if recompute:
                total = total + checkpoint(self._piece, h, y, use_reentrant=False)
            else:
                total = total + self._piece(h, y)
        return total

    @torch.no_grad()
    def check(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> str | None:
        """Compare the chunked head with the model's own logits on a few tokens; on a mismatch
        fall back to whole logits and say so (a model whose forward does more than its head)."""
        if not self.chunked:
            return "this model has no output head module; the loss runs on its whole logits"
        n = min(16, input_ids.shape[1])
        ids, mask = input_ids[:1, :n], attention_mask[:1, :n]
        was_training = self.model.training
        self.model.eval()
        try:
            own = self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()
            hidden = self.body(input_ids=ids, attention_mask=mask, use_cache=False)
            ours = self.head(hidden.last_hidden_state).float()
            if self.transform is not None:
                ours = self.transform(ours)
        finally:
            self.model.train(was_training)
        scale = max(1.0, float(own.abs().max()))
        if own.shape == ours.shape and math.isclose(
            float((own - ours).abs().max()) / scale, 0.0, abs_tol=1e-2
        ):
            return None
        self.chunked = False
        return (
            f"{type(self.model).__name__}'s logits are not its output head's alone; the loss "
            "runs on the whole logits of each micro-batch (more memory)"
        )
