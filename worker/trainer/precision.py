"""What a run computes in, from `actor.model.precision` and `actor.fsdp_config.mixed_precision`.

LoRA: the frozen base weights are held in the param dtype (bf16 halves their memory), the LoRA
weights and AdamW's state stay fp32. Full fine-tuning keeps fp32 master weights and computes in
the param dtype under autocast. fp16 always trains with a grad scaler. CPU honours every dtype.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from worker.trainer.spec_values import value

if TYPE_CHECKING:
    from loraplane_client.models import JobSpec

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
NAMES = {dtype: name for name, dtype in DTYPES.items()}


@dataclass(frozen=True)
class PrecisionPlan:
    """The dtypes of one run; `notes` say what was asked and what was done instead, if anything."""

    name: str  # the param dtype in effect: fp32 | bf16 | fp16
    is_lora: bool
    device_type: str
    base_dtype: torch.dtype  # the dtype the model is loaded in
    autocast_dtype: torch.dtype | None  # compute dtype under torch.autocast, None: no autocast
    buffer_dtype: torch.dtype | None  # floating buffers cast to this, None: as loaded
    grad_scaler: bool
    notes: list[str] = field(default_factory=list)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.autocast_dtype)

    def describe(self) -> str:
        """One line for the job's events, e.g. `base weights bf16, LoRA fp32, compute bf16`."""
        if self.is_lora:
            parts = [f"base weights {self.name}", "LoRA weights and AdamW state fp32"]
            if self.autocast_dtype is not None:
                parts.append(f"compute {NAMES[self.autocast_dtype]} (autocast)")
            elif self.name != "fp32":
                parts.append(f"compute {self.name} in the base layers, fp32 in LoRA")
        else:
            parts = ["master weights and AdamW state fp32"]
            parts.append(
                f"compute {NAMES[self.autocast_dtype]} (autocast)"
                if self.autocast_dtype is not None
                else "compute fp32"
            )
        if self.buffer_dtype is not None:
            parts.append(f"buffers {NAMES[self.buffer_dtype]}")
        if self.grad_scaler:
            parts.append("fp16 grad scaler")
        return ", ".join(parts)

    def cast_buffers(self, model: torch.nn.Module) -> None:
        """Cast the model's floating-point buffers to `buffer_dtype` (RLinf's buffer_dtype)."""
        if self.buffer_dtype is None:
            return
        for module in model.modules():
            for name, buffer in list(module.named_buffers(recurse=False)):
                if buffer is not None and buffer.is_floating_point():
                    setattr(module, name, buffer.to(self.buffer_dtype))


def _bf16_ok(device_type: str) -> bool:
    return device_type != "cuda" or torch.cuda.is_bf16_supported()


def plan_precision(spec: JobSpec, device: torch.device) -> PrecisionPlan:
    """The precision plan for this spec on this device."""
    model_spec = spec.actor.model
    is_lora = bool(model_spec.is_lora)
    fsdp = value(spec.actor.fsdp_config)
    mixed = value(fsdp.mixed_precision) if fsdp else None
    param = value(mixed.param_dtype) if mixed else None
    asked = param or value(model_spec.precision)
    source = (
        "actor.fsdp_config.mixed_precision.param_dtype" if param else "actor.model.precision"
    )
    notes: list[str] = []
    kind = device.type
    if asked is None:
        name = "bf16" if kind == "cuda" and _bf16_ok(kind) else "fp32"
    elif asked == "bf16" and not _bf16_ok(kind):
        notes.append(f"{source} asks for bf16, which this GPU does not support; training in fp32")
        name = "fp32"
    else:
        name = asked
    reduce = value(mixed.reduce_dtype) if mixed else None
    if reduce not in (None, "fp32"):
        notes.append(
            f"reduce_dtype {reduce} applies to the reduction across devices; on one device "
            "gradients accumulate in fp32"
        )
    buffer = value(mixed.buffer_dtype) if mixed else None
    dtype = DTYPES[name]
    if is_lora:
        base_dtype = dtype
        # On a GPU the LoRA matmuls gain from autocast too; on a CPU the base layers already
        # run in the param dtype and the small LoRA matmuls stay fp32.
        autocast_dtype = dtype if kind == "cuda" and name != "fp32" else None
    else:
        base_dtype = torch.float32
        autocast_dtype = dtype if name != "fp32" else None
    return PrecisionPlan(
        name=name,
        is_lora=is_lora,
        device_type=kind,
        base_dtype=base_dtype,
        autocast_dtype=autocast_dtype,
        buffer_dtype=DTYPES[buffer] if buffer else None,
        grad_scaler=name == "fp16",
        notes=notes,
    )


def gradient_checkpointing_asked(spec: JobSpec) -> bool:
    """On when `actor.model.gradient_checkpointing` or `actor.fsdp_config`'s is true."""
    fsdp = value(spec.actor.fsdp_config)
    return bool(value(spec.actor.model.gradient_checkpointing)) or bool(
        fsdp and value(fsdp.gradient_checkpointing)
    )
