from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="SampleCreate")


@_attrs_define
class SampleCreate:
    """`POST /samples`: completions of a few prompts.

    Attributes:
        prompts (list[str]): Plain prompts, each completed on its own.
        adapter (None | str | Unset): Any `lora_path` form (adapter id, `name:version`, `name@alias`, adapter or
            checkpoint URL, checkpoint id, worker-local folder); null: the bare base model.
        base_model (None | str | Unset): The base model (`model_path`); defaults to the adapter's. Required with a null
            `adapter` or a worker-local folder.
        max_new_tokens (int | Unset):  Default: 64.
        priority (int | Unset):  Default: 0.
        seed (int | Unset): Seeds sampling (temperature > 0). Default: 0.
        temperature (float | Unset): 0: greedy (deterministic); above 0: sampled. Default: 0.0.
    """

    prompts: list[str]
    adapter: None | str | Unset = UNSET
    base_model: None | str | Unset = UNSET
    max_new_tokens: int | Unset = 64
    priority: int | Unset = 0
    seed: int | Unset = 0
    temperature: float | Unset = 0.0

    def to_dict(self) -> dict[str, Any]:
        prompts = self.prompts

        adapter: None | str | Unset
        if isinstance(self.adapter, Unset):
            adapter = UNSET
        else:
            adapter = self.adapter

        base_model: None | str | Unset
        if isinstance(self.base_model, Unset):
            base_model = UNSET
        else:
            base_model = self.base_model

        max_new_tokens = self.max_new_tokens

        priority = self.priority

        seed = self.seed

        temperature = self.temperature

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "prompts": prompts,
            }
        )
        if adapter is not UNSET:
            field_dict["adapter"] = adapter
        if base_model is not UNSET:
            field_dict["base_model"] = base_model
        if max_new_tokens is not UNSET:
            field_dict["max_new_tokens"] = max_new_tokens
        if priority is not UNSET:
            field_dict["priority"] = priority
        if seed is not UNSET:
            field_dict["seed"] = seed
        if temperature is not UNSET:
            field_dict["temperature"] = temperature

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        prompts = cast(list[str], d.pop("prompts"))

        def _parse_adapter(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        adapter = _parse_adapter(d.pop("adapter", UNSET))

        def _parse_base_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        base_model = _parse_base_model(d.pop("base_model", UNSET))

        max_new_tokens = d.pop("max_new_tokens", UNSET)

        priority = d.pop("priority", UNSET)

        seed = d.pop("seed", UNSET)

        temperature = d.pop("temperature", UNSET)

        sample_create = cls(
            prompts=prompts,
            adapter=adapter,
            base_model=base_model,
            max_new_tokens=max_new_tokens,
            priority=priority,
            seed=seed,
            temperature=temperature,
        )

        return sample_create
