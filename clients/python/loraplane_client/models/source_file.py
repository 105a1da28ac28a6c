from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="SourceFile")


@_attrs_define
class SourceFile:
    """A file the worker downloads, verifies and saves under `name` in one folder.

    Attributes:
        name (str): Name in the PEFT folder (`adapter_config.json`, ...).
        sha256 (str):
        size (int):
        url (str): Server-relative URL (a path) to GET it from.
    """

    name: str
    sha256: str
    size: int
    url: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        sha256 = self.sha256

        size = self.size

        url = self.url

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "name": name,
                "sha256": sha256,
                "size": size,
                "url": url,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        name = d.pop("name")

        sha256 = d.pop("sha256")

        size = d.pop("size")

        url = d.pop("url")

        source_file = cls(
            name=name,
            sha256=sha256,
            size=size,
            url=url,
        )

        source_file.additional_properties = d
        return source_file

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
