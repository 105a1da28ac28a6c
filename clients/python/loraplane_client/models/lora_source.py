from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.lora_source_kind import LoraSourceKind
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.source_file import SourceFile


T = TypeVar("T", bound="LoraSource")


@_attrs_define
class LoraSource:
    """What a worker continues from: a registry adapter, a checkpoint, or a local folder.

    Attributes:
        kind (LoraSourceKind):
        lora_path (str):
        adapter_id (None | str | Unset):
        checkpoint_id (None | str | Unset):
        files (list[SourceFile] | Unset):
        job_id (None | str | Unset): The job that saved the checkpoint.
        path (None | str | Unset): Worker-local folder (kind `local`).
        rank (int | None | Unset):
    """

    kind: LoraSourceKind
    lora_path: str
    adapter_id: None | str | Unset = UNSET
    checkpoint_id: None | str | Unset = UNSET
    files: list[SourceFile] | Unset = UNSET
    job_id: None | str | Unset = UNSET
    path: None | str | Unset = UNSET
    rank: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        kind = self.kind.value

        lora_path = self.lora_path

        adapter_id: None | str | Unset
        if isinstance(self.adapter_id, Unset):
            adapter_id = UNSET
        else:
            adapter_id = self.adapter_id

        checkpoint_id: None | str | Unset
        if isinstance(self.checkpoint_id, Unset):
            checkpoint_id = UNSET
        else:
            checkpoint_id = self.checkpoint_id

        files: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.files, Unset):
            files = []
            for files_item_data in self.files:
                files_item = files_item_data.to_dict()
                files.append(files_item)

        job_id: None | str | Unset
        if isinstance(self.job_id, Unset):
            job_id = UNSET
        else:
            job_id = self.job_id

        path: None | str | Unset
        if isinstance(self.path, Unset):
            path = UNSET
        else:
            path = self.path

        rank: int | None | Unset
        if isinstance(self.rank, Unset):
            rank = UNSET
        else:
            rank = self.rank

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "kind": kind,
                "lora_path": lora_path,
            }
        )
        if adapter_id is not UNSET:
            field_dict["adapter_id"] = adapter_id
        if checkpoint_id is not UNSET:
            field_dict["checkpoint_id"] = checkpoint_id
        if files is not UNSET:
            field_dict["files"] = files
        if job_id is not UNSET:
            field_dict["job_id"] = job_id
        if path is not UNSET:
            field_dict["path"] = path
        if rank is not UNSET:
            field_dict["rank"] = rank

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.source_file import SourceFile

        d = dict(src_dict)
        kind = LoraSourceKind(d.pop("kind"))

        lora_path = d.pop("lora_path")

        def _parse_adapter_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        adapter_id = _parse_adapter_id(d.pop("adapter_id", UNSET))

        def _parse_checkpoint_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        checkpoint_id = _parse_checkpoint_id(d.pop("checkpoint_id", UNSET))

        _files = d.pop("files", UNSET)
        files: list[SourceFile] | Unset = UNSET
        if _files is not UNSET:
            files = []
            for files_item_data in _files:
                files_item = SourceFile.from_dict(files_item_data)

                files.append(files_item)

        def _parse_job_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        job_id = _parse_job_id(d.pop("job_id", UNSET))

        def _parse_path(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        path = _parse_path(d.pop("path", UNSET))

        def _parse_rank(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        rank = _parse_rank(d.pop("rank", UNSET))

        lora_source = cls(
            kind=kind,
            lora_path=lora_path,
            adapter_id=adapter_id,
            checkpoint_id=checkpoint_id,
            files=files,
            job_id=job_id,
            path=path,
            rank=rank,
        )

        lora_source.additional_properties = d
        return lora_source

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
