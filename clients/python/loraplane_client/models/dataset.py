from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Dataset")


@_attrs_define
class Dataset:
    """An uploaded JSONL training file.

    Attributes:
        created_at (datetime.datetime):
        id (str):
        keys (list[str]): Keys present in every row.
        name (str):
        rows (int): JSON objects (blank lines are not rows).
        sha256 (str):
        size (int): Bytes.
    """

    created_at: datetime.datetime
    id: str
    keys: list[str]
    name: str
    rows: int
    sha256: str
    size: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at.isoformat()

        id = self.id

        keys = self.keys

        name = self.name

        rows = self.rows

        sha256 = self.sha256

        size = self.size

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "id": id,
                "keys": keys,
                "name": name,
                "rows": rows,
                "sha256": sha256,
                "size": size,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        id = d.pop("id")

        keys = cast(list[str], d.pop("keys"))

        name = d.pop("name")

        rows = d.pop("rows")

        sha256 = d.pop("sha256")

        size = d.pop("size")

        dataset = cls(
            created_at=created_at,
            id=id,
            keys=keys,
            name=name,
            rows=rows,
            sha256=sha256,
            size=size,
        )

        dataset.additional_properties = d
        return dataset

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
