from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.adapter_patch_tags_type_0 import AdapterPatchTagsType0


T = TypeVar("T", bound="AdapterPatch")


@_attrs_define
class AdapterPatch:
    """A JSON merge patch (RFC 7396) of an adapter's metadata: a field left out is unchanged,
    `null` clears it; `tags` merges key by key, a `null` value drops that key.

        Attributes:
            description (None | str | Unset):
            tags (AdapterPatchTagsType0 | None | Unset): Keys: 1 to 64 of letters, digits, `._/-`; values: up to 256
                printable characters; at most 50 tags per adapter.
    """

    description: None | str | Unset = UNSET
    tags: AdapterPatchTagsType0 | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.adapter_patch_tags_type_0 import AdapterPatchTagsType0

        description: None | str | Unset
        if isinstance(self.description, Unset):
            description = UNSET
        else:
            description = self.description

        tags: dict[str, Any] | None | Unset
        if isinstance(self.tags, Unset):
            tags = UNSET
        elif isinstance(self.tags, AdapterPatchTagsType0):
            tags = self.tags.to_dict()
        else:
            tags = self.tags

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if description is not UNSET:
            field_dict["description"] = description
        if tags is not UNSET:
            field_dict["tags"] = tags

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.adapter_patch_tags_type_0 import AdapterPatchTagsType0

        d = dict(src_dict)

        def _parse_description(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        description = _parse_description(d.pop("description", UNSET))

        def _parse_tags(data: object) -> AdapterPatchTagsType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                tags_type_0 = AdapterPatchTagsType0.from_dict(data)

                return tags_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(AdapterPatchTagsType0 | None | Unset, data)

        tags = _parse_tags(d.pop("tags", UNSET))

        adapter_patch = cls(
            description=description,
            tags=tags,
        )

        return adapter_patch
