"""Gradient checkpointing from either RLinf key: the same losses and gradients as without."""

from __future__ import annotations

import pytest
import torch

FULL = {"is_lora": False, "lora_rank": None}


def _grads(session) -> dict[str, torch.Tensor]:
    """Loss and gradients of one fixed micro-batch, with dropout drawn from a fixed seed."""
    session.model.zero_grad(set_to_none=True)
    batch = session._micro_batches(session.train_examples[:4])[0]
    torch.manual_seed(3)
    loss = session._loss_sum(batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in session.model.named_parameters() if p.grad is not None}
    return {"loss": loss.detach(), **grads}


def _checkpointing(session) -> bool:
    model = session.model
    model = model.get_base_model() if hasattr(model, "get_base_model") else model
    name = "is_activation_checkpointing"  # transformers 5; 4.x: is_gradient_checkpointing
    return bool(getattr(model, name if hasattr(model, name) else "is_gradient_checkpointing"))


@pytest.mark.parametrize(
    ("model", "where"),
    [
        ({"lora_dropout": 0.1}, "fsdp_config"),
        ({"lora_dropout": 0.1}, "model"),
        (FULL, "fsdp_config"),
    ],
)
def test_same_losses_and_gradients_as_without(train, make_spec, model, where) -> None:
    base = {"actor": {"model": model, "optim": {"lr": 1e-3}}, "runner": {"max_steps": 4}}
    on = (
        {"actor": {**base["actor"], "fsdp_config": {"gradient_checkpointing": True}}}
        if where == "fsdp_config"
        else {"actor": {**base["actor"], "model": {**model, "gradient_checkpointing": True}}}
    )
    _, plain_hooks, plain = train(make_spec(base))
    _, hooks, checkpointed = train(make_spec({**base, **on}))

    assert any("gradient checkpointing on" in line for line in hooks.logs)
    assert any("gradient checkpointing off" in line for line in plain_hooks.logs)
    assert _checkpointing(checkpointed) and not _checkpointing(plain)
    assert hooks.losses == pytest.approx(plain_hooks.losses, rel=1e-5)

    expected, got = _grads(plain), _grads(checkpointed)
    assert expected.keys() == got.keys() and len(expected) > 10
    trainable = {n for n, p in checkpointed.model.named_parameters() if p.requires_grad}
    assert trainable <= got.keys()  # every trainable weight got a gradient through the recompute
    for name, grad in expected.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    assert all(float(got[n].abs().sum()) > 0 for n in trainable if "lora_A" in n)
