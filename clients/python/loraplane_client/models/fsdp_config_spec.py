from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.fsdp_config_spec_sharding_strategy import FsdpConfigSpecShardingStrategy
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
        sharding_strategy (FsdpConfigSpecShardingStrategy | Unset): How the actor's state is split over its devices
            (several devices only): `full_shard` shards parameters, gradients and optimizer state (FSDP2, parameters
            gathered again for backward), `shard_grad_op` keeps parameters gathered between forward and backward, `no_shard`
            replicates the model on every device (DDP). Default: FsdpConfigSpecShardingStrategy.FULL_SHARD.
    """

    gradient_checkpointing: bool | None | Unset = UNSET
    mixed_precision: MixedPrecisionSpec | Unset = UNSET
    sharding_strategy: FsdpConfigSpecShardingStrategy | Unset = (
        FsdpConfigSpecShardingStrategy.FULL_SHARD
    )

    def to_dict(self) -> dict[str, Any]:
        gradient_checkpointing: bool | None | Unset
        if isinstance(self.gradient_checkpointing, Unset):
            gradient_checkpointing = UNSET
        else:
            gradient_checkpointing = self.gradient_checkpointing

        mixed_precision: dict[str, Any] | Unset = UNSET
        if not isinstance(self.mixed_precision, Unset):
            mixed_precision = self.mixed_precision.to_dict()

        sharding_strategy: str | Unset = UNSET
        if not isinstance(self.sharding_strategy, Unset):
            sharding_strategy = self.sharding_strategy.value

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if gradient_checkpointing is not UNSET:
            field_dict["gradient_checkpointing"] = gradient_checkpointing
        if mixed_precision is not UNSET:
            field_dict["mixed_precision"] = mixed_precision
        if sharding_strategy is not UNSET:
            field_dict["sharding_strategy"] = sharding_strategy

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

        _sharding_strategy = d.pop("sharding_strategy", UNSET)
        sharding_strategy: FsdpConfigSpecShardingStrategy | Unset
        if isinstance(_sharding_strategy, Unset):
            sharding_strategy = UNSET
        else:
            sharding_strategy = FsdpConfigSpecShardingStrategy(_sharding_strategy)

        fsdp_config_spec = cls(
            gradient_checkpointing=gradient_checkpointing,
            mixed_precision=mixed_precision,
            sharding_strategy=sharding_strategy,
        )

        return fsdp_config_spec
