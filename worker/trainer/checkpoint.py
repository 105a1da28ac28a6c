"""Training state on disk without pickle: tensors in safetensors, everything else in JSON.

A checkpoint folder holds the weights (a peft adapter folder, or a full HF model folder) and:

- `optimizer.safetensors`: AdamW's per-parameter tensors, keyed `state.<index>.<name>`;
- `optimizer.json`: param groups, the trainable parameter names in optimizer order, and any
  non-tensor per-parameter state;
- `rng_state.safetensors`: torch CPU and CUDA generator states (uint8);
- `trainer_state.json`: step, epoch and position in the epoch, scheduler and grad-scaler state,
  the last metrics.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from worker.trainer.errors import UserError
from worker.trainer.files import ADAPTER_CONFIG, ADAPTER_WEIGHTS

FORMAT_VERSION = 1
TRAINER_STATE = "trainer_state.json"
OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_META = "optimizer.json"
RNG_STATE = "rng_state.safetensors"
STATE_FILES = (TRAINER_STATE, OPTIMIZER_TENSORS, OPTIMIZER_META, RNG_STATE)


def write_json(path: Path, value: Any) -> None:
    path.write_text(
        json.dumps(value, indent=2, sort_keys=True, allow_nan=True) + "\n", encoding="utf-8"
    )


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@contextlib.contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield an empty sibling folder; on success it replaces `final` in one rename."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        yield staging
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def by_index(state_dict: dict[str, Any], param_names: Sequence[str]) -> dict[str, Any]:
    """A name-keyed optimizer state (torch.distributed.checkpoint's full form) in the index
    form `optimizer.state_dict()` has, indices in `param_names` order."""
    index = {name: i for i, name in enumerate(param_names)}
    return {
        "state": {index[name]: entry for name, entry in state_dict["state"].items()},
        "param_groups": [{**group, "params": [index[name] for name in group["params"]]}
                         for group in state_dict["param_groups"]],
    }


def by_name(state_dict: dict[str, Any], param_names: Sequence[str]) -> dict[str, Any]:
    """The inverse of `by_index`."""
    return {
        "state": {param_names[int(i)]: entry for i, entry in state_dict["state"].items()},
        "param_groups": [{**group, "params": [param_names[int(i)] for i in group["params"]]}
                         for group in state_dict["param_groups"]],
    }


def save_optimizer(
    optimizer: torch.optim.Optimizer, param_names: Sequence[str], directory: Path,
    state_dict: dict[str, Any] | None = None,
) -> None:
    """Flatten the optimizer's state dict (or `state_dict`, in its index form: a sharded
    optimizer's gathered state) into safetensors + JSON."""
    if state_dict is None:
        state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, dict[str, Any]] = {}
    for index, entry in state_dict["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{key}"] = value.detach().to("cpu").contiguous().clone()
            else:
                other.setdefault(str(index), {})[key] = value
    save_file(tensors, str(directory / OPTIMIZER_TENSORS), metadata={"format": "pt"})
    write_json(
        directory / OPTIMIZER_META,
        {
            "format_version": FORMAT_VERSION,
            "class": type(optimizer).__name__,
            "param_names": list(param_names),
            "param_groups": state_dict["param_groups"],
            "non_tensor_state": other,
        },
    )


def load_optimizer(
    optimizer: torch.optim.Optimizer, param_names: Sequence[str], directory: Path
) -> None:
    """Restore what `save_optimizer` wrote, checking it belongs to these parameters."""
    optimizer.load_state_dict(read_optimizer(optimizer, param_names, directory))


def read_optimizer(
    optimizer: torch.optim.Optimizer, param_names: Sequence[str], directory: Path
) -> dict[str, Any]:
    """What `save_optimizer` wrote, in `optimizer.state_dict()`'s form, checked against these
    parameters."""
    meta = read_json(directory / OPTIMIZER_META)
    if meta.get("class") != type(optimizer).__name__ or meta.get("param_names") != list(
        param_names
    ):
        raise UserError(
            f"checkpoint {directory} was written for other trainable parameters "
            f"({len(meta.get('param_names', []))} saved, {len(param_names)} now)",
            code="invalid_checkpoint",
        )
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in load_file(str(directory / OPTIMIZER_TENSORS)).items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = tensor
    for index, entry in meta["non_tensor_state"].items():
        state.setdefault(int(index), {}).update(entry)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    return {"state": state, "param_groups": groups}


def save_rng(directory: Path) -> None:
    """Torch's CPU and CUDA generator states."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, value in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda.{index}"] = value
    save_file(tensors, str(directory / RNG_STATE), metadata={"format": "pt"})


def load_rng(directory: Path) -> None:
    """Restore what `save_rng` wrote (CUDA states only for devices present)."""
    tensors = load_file(str(directory / RNG_STATE))
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        for name, value in tensors.items():
            if name.startswith("torch_cuda."):
                index = int(name.split(".", 1)[1])
                if index < torch.cuda.device_count():
                    torch.cuda.set_rng_state(value, index)


def check_checkpoint_dir(directory: Path, weight_files: Sequence[str]) -> dict[str, Any]:
    """The checkpoint's trainer state, after checking every file it needs is there."""
    needed = [*STATE_FILES, *weight_files]
    missing = [name for name in needed if not (directory / name).is_file()]
    if missing:
        raise UserError(
            f"checkpoint {directory} is incomplete: missing {missing}", code="invalid_checkpoint"
        )
    state = read_json(directory / TRAINER_STATE)
    if state.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"checkpoint {directory} has format {state.get('format_version')!r}; "
            f"this trainer reads {FORMAT_VERSION}",
            code="invalid_checkpoint",
        )
    return state


def read_resume_state(
    directory: Path, *, kind: str, num_examples: int, global_batch_size: int
) -> dict[str, Any]:
    """The trainer state of a checkpoint this run can resume from; a UserError otherwise."""
    weights = [ADAPTER_CONFIG, ADAPTER_WEIGHTS] if kind == "lora" else ["config.json"]
    state = check_checkpoint_dir(directory, weights)
    if kind != "lora" and not any(directory.glob("*.safetensors")):
        raise UserError(f"checkpoint {directory} has no model weights", code="invalid_checkpoint")
    expected = {"kind": kind, "num_examples": num_examples, "global_batch_size": global_batch_size}
    found = {key: state.get(key) for key in expected}
    if found["global_batch_size"] != global_batch_size and {**found, "global_batch_size": 0} == {
            **expected, "global_batch_size": 0}:
        raise UserError(
            f"checkpoint {directory} was trained with actor.global_batch_size "
            f"{found['global_batch_size']}, this run asks for {global_batch_size}: a checkpoint "
            "resumes with the same global batch (on any number of devices)",
            code="invalid_checkpoint",
        )
    if found != expected:
        raise UserError(
            f"checkpoint {directory} belongs to another run: {found} != {expected}",
            code="invalid_checkpoint",
        )
    return state
