from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="PeftVerdict")


@_attrs_define
class PeftVerdict:
    """Whether peft loads the adapter: every peft from 0.11.1 (RLinf's pin) to the newest.

    Attributes:
        ok (bool):
        reasons (list[str]): Why not, one sentence per field at fault.
        notes (list[str] | Unset): What to know when it is ok.
    """

    ok: bool
    reasons: list[str]
    notes: list[str] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        ok = self.ok

        reasons = self.reasons

        notes: list[str] | Unset = UNSET
        if not isinstance(self.notes, Unset):
            notes = self.notes

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
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
        ok = d.pop("ok")

        reasons = cast(list[str], d.pop("reasons"))

        notes = cast(list[str], d.pop("notes", UNSET))

        peft_verdict = cls(
            ok=ok,
            reasons=reasons,
            notes=notes,
        )

        peft_verdict.additional_properties = d
        return peft_verdict

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
