from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="RegistryImport")


@_attrs_define
class RegistryImport:
    """What `POST /import` did.

    Attributes:
        adapters_created (list[str]): Ids of the adapters added.
        adapters_present (list[str]): Ids already here with the same name, version and files (left as they are).
        aliases_set (int):
        blobs_present (int): Blobs the store already held (not duplicated).
        blobs_stored (int): Blobs this import added to the store.
    """

    adapters_created: list[str]
    adapters_present: list[str]
    aliases_set: int
    blobs_present: int
    blobs_stored: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        adapters_created = self.adapters_created

        adapters_present = self.adapters_present

        aliases_set = self.aliases_set

        blobs_present = self.blobs_present

        blobs_stored = self.blobs_stored

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "adapters_created": adapters_created,
                "adapters_present": adapters_present,
                "aliases_set": aliases_set,
                "blobs_present": blobs_present,
                "blobs_stored": blobs_stored,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        adapters_created = cast(list[str], d.pop("adapters_created"))

        adapters_present = cast(list[str], d.pop("adapters_present"))

        aliases_set = d.pop("aliases_set")

        blobs_present = d.pop("blobs_present")

        blobs_stored = d.pop("blobs_stored")

        registry_import = cls(
            adapters_created=adapters_created,
            adapters_present=adapters_present,
            aliases_set=aliases_set,
            blobs_present=blobs_present,
            blobs_stored=blobs_stored,
        )

        registry_import.additional_properties = d
        return registry_import

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
