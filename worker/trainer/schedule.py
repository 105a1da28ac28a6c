"""The optimiser and its learning-rate schedule: AdamW, warmup, then constant, linear or cosine."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from loraplane_client.models import OptimSpec


def lr_factor(kind: str, warmup: int, length: int) -> Callable[[int], float]:
    """Multiplier of the peak lr for the update with 0-based index s.

    Warmup: (s + 1) / (warmup + 1) for the first `warmup` updates; then constant, or a linear or
    half-cosine decay from 1 towards 0 over the remaining `length - warmup` updates.
    """

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / (warmup + 1)
        if kind == "constant":
            return 1.0
        progress = min(1.0, (s - warmup) / max(1, length - warmup))
        if kind == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def make_optimizer(
    params: Sequence[torch.nn.Parameter], optim: OptimSpec, total_steps: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over `params` and its schedule, over `total_training_steps` or the run's steps."""
    optimizer = torch.optim.AdamW(
        params,
        lr=optim.lr,
        betas=(optim.adam_beta1, optim.adam_beta2),
        eps=optim.adam_eps,
        weight_decay=optim.weight_decay,
    )
    length = optim.total_training_steps or total_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_factor(optim.lr_scheduler, optim.lr_warmup_steps, length)
    )
    return optimizer, scheduler
