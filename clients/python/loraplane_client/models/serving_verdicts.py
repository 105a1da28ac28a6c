from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.peft_verdict import PeftVerdict
    from ..models.vllm_verdict import VllmVerdict


T = TypeVar("T", bound="ServingVerdicts")


@_attrs_define
class ServingVerdicts:
    """Computed at registration from adapter_config.json and the tensor names.

    Attributes:
        peft (PeftVerdict): Whether peft loads the adapter: every peft from 0.11.1 (RLinf's pin) to the newest.
        vllm (VllmVerdict): Whether vLLM's LoRA loader takes the adapter, by its rules (rank, DoRA, bias,
            modules_to_save, tensor names, ...).
    """

    peft: PeftVerdict
    vllm: VllmVerdict
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        peft = self.peft.to_dict()

        vllm = self.vllm.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "peft": peft,
                "vllm": vllm,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.peft_verdict import PeftVerdict
        from ..models.vllm_verdict import VllmVerdict

        d = dict(src_dict)
        peft = PeftVerdict.from_dict(d.pop("peft"))

        vllm = VllmVerdict.from_dict(d.pop("vllm"))

        serving_verdicts = cls(
            peft=peft,
            vllm=vllm,
        )

        serving_verdicts.additional_properties = d
        return serving_verdicts

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
