from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.optim_spec_lr_scheduler import OptimSpecLrScheduler
from ..types import UNSET, Unset

T = TypeVar("T", bound="OptimSpec")


@_attrs_define
class OptimSpec:
    """`actor.optim`: AdamW and its learning-rate schedule.

    Attributes:
        adam_beta1 (float | Unset):  Default: 0.9.
        adam_beta2 (float | Unset):  Default: 0.999.
        adam_eps (float | Unset):  Default: 1e-08.
        clip_grad (float | None | Unset): Max gradient norm; null or <= 0: no clipping. Default: 1.0.
        lr (float | Unset): Peak learning rate. Default: 0.0001.
        lr_scheduler (OptimSpecLrScheduler | Unset):  Default: OptimSpecLrScheduler.CONSTANT.
        lr_warmup_steps (int | Unset):  Default: 0.
        total_training_steps (int | None | Unset): Length of the lr schedule; defaults to the run's step count.
        weight_decay (float | Unset):  Default: 0.0.
    """

    adam_beta1: float | Unset = 0.9
    adam_beta2: float | Unset = 0.999
    adam_eps: float | Unset = 1e-08
    clip_grad: float | None | Unset = 1.0
    lr: float | Unset = 0.0001
    lr_scheduler: OptimSpecLrScheduler | Unset = OptimSpecLrScheduler.CONSTANT
    lr_warmup_steps: int | Unset = 0
    total_training_steps: int | None | Unset = UNSET
    weight_decay: float | Unset = 0.0

    def to_dict(self) -> dict[str, Any]:
        adam_beta1 = self.adam_beta1

        adam_beta2 = self.adam_beta2

        adam_eps = self.adam_eps

        clip_grad: float | None | Unset
        if isinstance(self.clip_grad, Unset):
            clip_grad = UNSET
        else:
            clip_grad = self.clip_grad

        lr = self.lr

        lr_scheduler: str | Unset = UNSET
        if not isinstance(self.lr_scheduler, Unset):
            lr_scheduler = self.lr_scheduler.value

        lr_warmup_steps = self.lr_warmup_steps

        total_training_steps: int | None | Unset
        if isinstance(self.total_training_steps, Unset):
            total_training_steps = UNSET
        else:
            total_training_steps = self.total_training_steps

        weight_decay = self.weight_decay

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if adam_beta1 is not UNSET:
            field_dict["adam_beta1"] = adam_beta1
        if adam_beta2 is not UNSET:
            field_dict["adam_beta2"] = adam_beta2
        if adam_eps is not UNSET:
            field_dict["adam_eps"] = adam_eps
        if clip_grad is not UNSET:
            field_dict["clip_grad"] = clip_grad
        if lr is not UNSET:
            field_dict["lr"] = lr
        if lr_scheduler is not UNSET:
            field_dict["lr_scheduler"] = lr_scheduler
        if lr_warmup_steps is not UNSET:
            field_dict["lr_warmup_steps"] = lr_warmup_steps
        if total_training_steps is not UNSET:
            field_dict["total_training_steps"] = total_training_steps
        if weight_decay is not UNSET:
            field_dict["weight_decay"] = weight_decay

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        adam_beta1 = d.pop("adam_beta1", UNSET)

        adam_beta2 = d.pop("adam_beta2", UNSET)

        adam_eps = d.pop("adam_eps", UNSET)

        def _parse_clip_grad(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        clip_grad = _parse_clip_grad(d.pop("clip_grad", UNSET))

        lr = d.pop("lr", UNSET)

        _lr_scheduler = d.pop("lr_scheduler", UNSET)
        lr_scheduler: OptimSpecLrScheduler | Unset
        if isinstance(_lr_scheduler, Unset):
            lr_scheduler = UNSET
        else:
            lr_scheduler = OptimSpecLrScheduler(_lr_scheduler)

        lr_warmup_steps = d.pop("lr_warmup_steps", UNSET)

        def _parse_total_training_steps(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        total_training_steps = _parse_total_training_steps(d.pop("total_training_steps", UNSET))

        weight_decay = d.pop("weight_decay", UNSET)

        optim_spec = cls(
            adam_beta1=adam_beta1,
            adam_beta2=adam_beta2,
            adam_eps=adam_eps,
            clip_grad=clip_grad,
            lr=lr,
            lr_scheduler=lr_scheduler,
            lr_warmup_steps=lr_warmup_steps,
            total_training_steps=total_training_steps,
            weight_decay=weight_decay,
        )

        return optim_spec
