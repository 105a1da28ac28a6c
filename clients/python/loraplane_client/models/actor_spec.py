from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.fsdp_config_spec import FsdpConfigSpec
    from ..models.model_spec import ModelSpec
    from ..models.optim_spec import OptimSpec


T = TypeVar("T", bound="ActorSpec")


@_attrs_define
class ActorSpec:
    """`actor`: batch sizes, seed, model and optimizer.

    Attributes:
        model (ModelSpec): `actor.model`: the base model and how it is fine-tuned.
        fsdp_config (FsdpConfigSpec | Unset): `actor.fsdp_config`: the memory settings of RLinf's FSDP config that
            loraplane applies.
        global_batch_size (int | None | Unset): Samples per optimizer step (a multiple of micro_batch_size).
        micro_batch_size (int | Unset): Samples per forward/backward pass. Default: 1.
        optim (OptimSpec | Unset): `actor.optim`: AdamW and its learning-rate schedule.
        seed (int | Unset):  Default: 42.
    """

    model: ModelSpec
    fsdp_config: FsdpConfigSpec | Unset = UNSET
    global_batch_size: int | None | Unset = UNSET
    micro_batch_size: int | Unset = 1
    optim: OptimSpec | Unset = UNSET
    seed: int | Unset = 42

    def to_dict(self) -> dict[str, Any]:
        model = self.model.to_dict()

        fsdp_config: dict[str, Any] | Unset = UNSET
        if not isinstance(self.fsdp_config, Unset):
            fsdp_config = self.fsdp_config.to_dict()

        global_batch_size: int | None | Unset
        if isinstance(self.global_batch_size, Unset):
            global_batch_size = UNSET
        else:
            global_batch_size = self.global_batch_size

        micro_batch_size = self.micro_batch_size

        optim: dict[str, Any] | Unset = UNSET
        if not isinstance(self.optim, Unset):
            optim = self.optim.to_dict()

        seed = self.seed

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "model": model,
            }
        )
        if fsdp_config is not UNSET:
            field_dict["fsdp_config"] = fsdp_config
        if global_batch_size is not UNSET:
            field_dict["global_batch_size"] = global_batch_size
        if micro_batch_size is not UNSET:
            field_dict["micro_batch_size"] = micro_batch_size
        if optim is not UNSET:
            field_dict["optim"] = optim
        if seed is not UNSET:
            field_dict["seed"] = seed

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.fsdp_config_spec import FsdpConfigSpec
        from ..models.model_spec import ModelSpec
        from ..models.optim_spec import OptimSpec

        d = dict(src_dict)
        model = ModelSpec.from_dict(d.pop("model"))

        _fsdp_config = d.pop("fsdp_config", UNSET)
        fsdp_config: FsdpConfigSpec | Unset
        if isinstance(_fsdp_config, Unset):
            fsdp_config = UNSET
        else:
            fsdp_config = FsdpConfigSpec.from_dict(_fsdp_config)

        def _parse_global_batch_size(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        global_batch_size = _parse_global_batch_size(d.pop("global_batch_size", UNSET))

        micro_batch_size = d.pop("micro_batch_size", UNSET)

        _optim = d.pop("optim", UNSET)
        optim: OptimSpec | Unset
        if isinstance(_optim, Unset):
            optim = UNSET
        else:
            optim = OptimSpec.from_dict(_optim)

        seed = d.pop("seed", UNSET)

        actor_spec = cls(
            model=model,
            fsdp_config=fsdp_config,
            global_batch_size=global_batch_size,
            micro_batch_size=micro_batch_size,
            optim=optim,
            seed=seed,
        )

        return actor_spec
