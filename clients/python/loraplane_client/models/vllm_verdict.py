from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="VllmVerdict")


@_attrs_define
class VllmVerdict:
    """Whether vLLM's LoRA loader takes the adapter, by its rules (rank, DoRA, bias,
    modules_to_save, tensor names, ...).

        Attributes:
            max_lora_rank (int | None): The smallest `--max-lora-rank` value that holds the adapter's rank; null when no
                value does (above 512).
            ok (bool):
            reasons (list[str]): Why not, one sentence per field at fault.
            notes (list[str] | Unset): What to know when it is ok.
    """

    max_lora_rank: int | None
    ok: bool
    reasons: list[str]
    notes: list[str] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        max_lora_rank: int | None
        max_lora_rank = self.max_lora_rank

        ok = self.ok

        reasons = self.reasons

        notes: list[str] | Unset = UNSET
        if not isinstance(self.notes, Unset):
            notes = self.notes

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "max_lora_rank": max_lora_rank,
                "ok": ok,
                "reasons": reasons,
            }
        )
        if notes is not UNSET:
            field_dict["notes"] = notes

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)

        def _parse_max_lora_rank(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        max_lora_rank = _parse_max_lora_rank(d.pop("max_lora_rank"))

        ok = d.pop("ok")

        reasons = cast(list[str], d.pop("reasons"))

        notes = cast(list[str], d.pop("notes", UNSET))

        vllm_verdict = cls(
            max_lora_rank=max_lora_rank,
            ok=ok,
            reasons=reasons,
            notes=notes,
        )

        vllm_verdict.additional_properties = d
        return vllm_verdict

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
