"""The chunked loss: equal to the plain loss and its gradients, and bounded in memory."""

from __future__ import annotations

import weakref

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from transformers import LlamaConfig, LlamaForCausalLM

from worker.trainer.data import IGNORE_INDEX
from worker.trainer.loss import ChunkedLoss, chunk_tokens


def _llama(vocab: int, hidden: int = 32, layers: int = 1) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2)
    return LlamaForCausalLM(config)


def _batch(vocab: int, rows: int, width: int, prompt: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, vocab, (rows, width), generator=generator)
    labels = input_ids.clone()
    labels[:, :prompt] = IGNORE_INDEX
    attention_mask = torch.ones_like(input_ids)
    attention_mask[-1, width // 2 :] = 0  # one padded row
    labels[-1, width // 2 :] = IGNORE_INDEX
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def _plain(model, batch) -> torch.Tensor:
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                           batch["labels"][:, 1:].reshape(-1), ignore_index=IGNORE_INDEX,
                           reduction="sum")


def _grads(model) -> dict[str, torch.Tensor]:
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


def test_chunked_loss_and_gradients_equal_the_plain_ones() -> None:
    vocab = 300
    model = _llama(vocab, layers=2)
    batch = _batch(vocab, rows=3, width=40, prompt=7)
    loss = ChunkedLoss(model, budget_bytes=16 * 4 * vocab)  # 16 tokens a chunk
    assert loss.chunk == 16 and loss.check(batch["input_ids"], batch["attention_mask"]) is None
    labelled = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    assert labelled > 4 * loss.chunk  # several chunks, the last one partial

    plain = _plain(model, batch)
    plain.backward()
    plain_grads = _grads(model)
    chunked = loss(batch["input_ids"], batch["attention_mask"], batch["labels"])
    chunked.backward()
    chunked_grads = _grads(model)

    assert chunked.item() == pytest.approx(plain.item(), rel=1e-6)
    assert plain_grads.keys() == chunked_grads.keys() and len(plain_grads) > 10
    for name, grad in plain_grads.items():
        torch.testing.assert_close(chunked_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


class LiveBytes(TorchDispatchMode):
    """Peak bytes of the tensor storages that ops create while active (alive until freed)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0
        self.refs: dict[int, weakref.ref] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                key = storage._cdata
                if key not in self.refs:
                    size = storage.nbytes()
                    self.live += size
                    self.peak = max(self.peak, self.live)
                    self.refs[key] = weakref.ref(storage, lambda _, k=key, n=size: self._free(k, n))
        return out

    def _free(self, key: int, size: int) -> None:
        self.live -= size
        self.refs.pop(key, None)


def _peak_bytes(step) -> int:
    meter = LiveBytes()
    with meter:
        step()
    return meter.peak


def test_the_loss_step_never_holds_the_batchs_full_fp32_logits() -> None:
    vocab, rows, width = 32000, 4, 256
    model = _llama(vocab)
    batch = _batch(vocab, rows=rows, width=width, prompt=0)
    full_logits = rows * width * vocab * 4  # 131 MB of fp32 logits
    loss = ChunkedLoss(model, budget_bytes=8 << 20)
    assert loss.chunk == chunk_tokens(vocab, 8 << 20) == 65

    def chunked() -> None:
        loss(batch["input_ids"], batch["attention_mask"], batch["labels"]).backward()

    def plain() -> None:
        _plain(model, batch).backward()

    chunked_peak, plain_peak = _peak_bytes(chunked), _peak_bytes(plain)
    assert plain_peak > full_logits  # the meter sees whole logits where they exist
    # chunk logits and their gradient, plus the weights' gradients: far below one full copy
    assert chunked_peak < full_logits / 3, (chunked_peak, plain_peak)
    assert chunked_peak < plain_peak / 8, (chunked_peak, plain_peak)


def test_a_model_whose_logits_are_more_than_its_head_falls_back_to_whole_logits() -> None:
    model = _llama(64)
    model.config.final_logit_softcapping = 0.05  # the loss would cap, Llama's forward does not
    batch = _batch(64, rows=2, width=12, prompt=2)
    loss = ChunkedLoss(model)
    message = loss.check(batch["input_ids"], batch["attention_mask"])
    assert message is not None and "the loss runs on the whole logits" in message
    assert loss.chunked is False
    value = loss(batch["input_ids"], batch["attention_mask"], batch["labels"])
    assert value.item() == pytest.approx(_plain(model, batch).item(), rel=1e-6)
