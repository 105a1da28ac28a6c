from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.mixed_precision_spec import MixedPrecisionSpec


T = TypeVar("T", bound="FsdpConfigSpec")


@_attrs_define
class FsdpConfigSpec:
    """`actor.fsdp_config`: the memory settings of RLinf's FSDP config that loraplane applies.

    Attributes:
        gradient_checkpointing (bool | None | Unset): Activation checkpointing; see actor.model.gradient_checkpointing.
        mixed_precision (MixedPrecisionSpec | Unset): `actor.fsdp_config.mixed_precision`: the dtypes of parameters,
            gradients and buffers.
    """

    gradient_checkpointing: bool | None | Unset = UNSET
    mixed_precision: MixedPrecisionSpec | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        gradient_checkpointing: bool | None | Unset
        if isinstance(self.gradient_checkpointing, Unset):
            gradient_checkpointing = UNSET
        else:
            gradient_checkpointing = self.gradient_checkpointing

        mixed_precision: dict[str, Any] | Unset = UNSET
        if not isinstance(self.mixed_precision, Unset):
            mixed_precision = self.mixed_precision.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if gradient_checkpointing is not UNSET:
            field_dict["gradient_checkpointing"] = gradient_checkpointing
        if mixed_precision is not UNSET:
            field_dict["mixed_precision"] = mixed_precision

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.mixed_precision_spec import MixedPrecisionSpec

        d = dict(src_dict)

        def _parse_gradient_checkpointing(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        gradient_checkpointing = _parse_gradient_checkpointing(
            d.pop("gradient_checkpointing", UNSET)
        )

        _mixed_precision = d.pop("mixed_precision", UNSET)
        mixed_precision: MixedPrecisionSpec | Unset
        if isinstance(_mixed_precision, Unset):
            mixed_precision = UNSET
        else:
            mixed_precision = MixedPrecisionSpec.from_dict(_mixed_precision)

        fsdp_config_spec = cls(
            gradient_checkpointing=gradient_checkpointing,
            mixed_precision=mixed_precision,
        )

        return fsdp_config_spec
