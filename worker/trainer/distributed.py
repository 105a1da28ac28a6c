"""Data-parallel training over several devices of one node, with torch.distributed's engines.

A run on N devices is N processes (one per device, started as torchrun starts them: the env
contract MASTER_ADDR / MASTER_PORT / RANK / WORLD_SIZE / LOCAL_RANK, see `worker/launch.py`),
joined in one process group: NCCL on GPUs, gloo on CPU. How the model's state is split follows
`actor.fsdp_config.sharding_strategy`:

- `full_shard`: FSDP2 (`torch.distributed.fsdp.fully_shard`) on every decoder layer and on the
  root, parameters resharded after forward (gathered again for backward);
- `shard_grad_op`: the same, parameters kept gathered between forward and backward
  (`reshard_after_forward=False`);
- `no_shard`: DDP, the model replicated on every device.

FSDP2 shards per parameter (DTensor), so frozen base weights and trainable LoRA weights may
share a layer; only the trainable ones need one dtype. The root FSDP module is `LossModule`,
whose forward is the chunked loss (`loss`), so the embeddings, final norm and output head
(tied or not) are one group that is gathered for the whole loss computation.

The math does not depend on the world size: every rank computes the same global batches from
the seed and takes its share of each (`rank_share`); each rank's loss is its summed answer-token
cross-entropy over the GLOBAL answer-token count times the world size, so the gradient average
that DDP and FSDP apply gives exactly the one-process gradient. A rank with fewer samples in a
step runs zero-weight micro-batches, so every rank runs the same collectives.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from worker.trainer.hooks import STOP_CODES, STOP_NAMES

# A collective waits this long for a missing rank before it fails. Long, because the other
# ranks wait at their next collective while rank 0 uploads a checkpoint (a large model's can
# take many minutes); a dead rank is noticed within a tenth of a second by the launcher's
# supervisor, which watches the processes and ends the group itself.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=60)
STRATEGIES = ("full_shard", "shard_grad_op", "no_shard")


@dataclass(frozen=True)
class Distributed:
    """This process's place in the group."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that speaks to the server (metrics, checkpoints, the result)."""
        return self.rank == 0


def env_world_size() -> int:
    """WORLD_SIZE of the torchrun env contract; 1 when it is not set."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def init_from_env(device_type: str) -> Distributed:
    """Join the process group the env contract describes (torchrun's variables)."""
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if device_type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        kwargs: dict[str, Any] = {"device_id": device} if backend == "nccl" else {}
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world,
                                timeout=COLLECTIVE_TIMEOUT, **kwargs)
    return Distributed(rank=rank, world_size=world, local_rank=local_rank, device=device,
                       backend=backend)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


# ---------------------------------------------------------------------- the data each rank reads

def rank_share(indices: Sequence[int], lengths: Sequence[int], rank: int, world: int) -> list[int]:
    """This rank's samples of one global batch: the batch sorted longest first (ties by index)
    and dealt round-robin, so ranks get similar token counts; the same on every run."""
    ranked = sorted(indices, key=lambda i: (-lengths[i], i))
    return ranked[rank::world]


def micro_batch_count(own: int, micro_batch_size: int) -> int:
    """Micro-batches every rank runs in a step: the most any rank needs (ranks are dealt at
    most one sample apart, so that is the count of rank 0's share)."""
    return max(1, -(-own // micro_batch_size))


# ---------------------------------------------------------------------- collectives

def _tensor(values: Sequence[float], device: torch.device) -> torch.Tensor:
    return torch.tensor(list(values), dtype=torch.float64, device=device)


def sum_over_ranks(values: Sequence[float], dist_: Distributed) -> list[float]:
    """Element-wise sums over all ranks."""
    tensor = _tensor(values, dist_.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def max_over_ranks(value: float, dist_: Distributed) -> float:
    tensor = _tensor([value], dist_.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())


def agree_on_stop(request: str | None, dist_: Distributed) -> str | None:
    """Rank 0's stop request, broadcast: every rank stops after the same step."""
    code = torch.tensor([STOP_CODES[request] if dist_.is_main else 0], dtype=torch.int64,
                        device=dist_.device)
    dist.broadcast(code, src=0)
    return STOP_NAMES[int(code.item())]


def broadcast_object(value: Any, dist_: Distributed) -> Any:
    """Rank 0's value on every rank (small, picklable objects only)."""
    box = [value if dist_.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(dist_: Distributed) -> None:
    if dist_.backend == "nccl":
        dist.barrier(device_ids=[dist_.local_rank])
    else:
        dist.barrier()


# ---------------------------------------------------------------------- the model

class LossModule(nn.Module):
    """The root module of a distributed run: forward is the summed answer-token loss, so the
    root FSDP group (embeddings, final norm, head) is gathered for the whole loss."""

    def __init__(self, model: nn.Module, loss: Any) -> None:
        super().__init__()
        self.model = model
        self._loss = loss  # ChunkedLoss: holds the body and head of `model`, not a module

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        return self._loss(input_ids, attention_mask, labels)


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The blocks HF says must not be split (`_no_split_modules`: e.g. LlamaDecoderLayer)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = set(getattr(base, "_no_split_modules", None) or [])
    return [m for m in base.modules() if type(m).__name__ in names]


def wrap_model(model: nn.Module, loss: Any, strategy: str, dist_: Distributed) -> nn.Module:
    """The root to run forward/backward through: FSDP2 or DDP per the sharding strategy."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown sharding strategy {strategy!r}")
    root = LossModule(model, loss)
    if strategy == "no_shard":
        from torch.nn.parallel import DistributedDataParallel

        ids = [dist_.local_rank] if dist_.device.type == "cuda" else None
        return DistributedDataParallel(root, device_ids=ids)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(dist_.device.type, (dist_.world_size,))
    reshard = strategy == "full_shard"
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, reshard_after_forward=reshard)
    fully_shard(root, mesh=mesh, reshard_after_forward=reshard)
    return root


@contextlib.contextmanager
def gradient_sync(root: nn.Module, enabled: bool) -> Iterator[None]:
    """Reduce gradients over the ranks only in the last micro-batch of a step."""
    if hasattr(root, "no_sync") and not hasattr(root, "set_requires_gradient_sync"):
        with contextlib.nullcontext() if enabled else root.no_sync():
            yield
        return
    root.set_requires_gradient_sync(enabled)
    yield


def plain(value: Any) -> Any:
    """A DTensor's full value (e.g. the total gradient norm FSDP returns); others unchanged."""
    from torch.distributed.tensor import DTensor

    return value.full_tensor() if isinstance(value, DTensor) else value


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every weight of `model`, gathered to CPU on rank 0 (an empty dict on the others)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(
        model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer state keyed by parameter name, gathered to CPU on rank 0 (empty elsewhere)."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_optimizer_state_dict,
    )

    return get_optimizer_state_dict(
        model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer,
                              state: dict[str, Any]) -> None:
    """Load a full, name-keyed optimizer state (read by every rank) into the sharded optimizer."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_optimizer_state_dict,
    )

    set_optimizer_state_dict(model, optimizer, state,
                             options=StateDictOptions(full_state_dict=True))
