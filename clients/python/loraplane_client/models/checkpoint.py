from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.checkpoint_kind import CheckpointKind

if TYPE_CHECKING:
    from ..models.file_ref import FileRef


T = TypeVar("T", bound="Checkpoint")


@_attrs_define
class Checkpoint:
    """A checkpoint a job saved; LoRA ones can be continued from with their `lora_path`.

    Attributes:
        attempt (int):
        created_at (datetime.datetime):
        files (list[FileRef]):
        id (str):
        job_id (str):
        kind (CheckpointKind):
        lora_path (None | str): Pass as `actor.model.lora_path` to continue from it; null when it holds no PEFT adapter
            (full fine-tuning).
        size (int):
        step (int):
    """

    attempt: int
    created_at: datetime.datetime
    files: list[FileRef]
    id: str
    job_id: str
    kind: CheckpointKind
    lora_path: None | str
    size: int
    step: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        attempt = self.attempt

        created_at = self.created_at.isoformat()

        files = []
        for files_item_data in self.files:
            files_item = files_item_data.to_dict()
            files.append(files_item)

        id = self.id

        job_id = self.job_id

        kind = self.kind.value

        lora_path: None | str
        lora_path = self.lora_path

        size = self.size

        step = self.step

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "attempt": attempt,
                "created_at": created_at,
                "files": files,
                "id": id,
                "job_id": job_id,
                "kind": kind,
                "lora_path": lora_path,
                "size": size,
                "step": step,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.file_ref import FileRef

        d = dict(src_dict)
        attempt = d.pop("attempt")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        files = []
        _files = d.pop("files")
        for files_item_data in _files:
            files_item = FileRef.from_dict(files_item_data)

            files.append(files_item)

        id = d.pop("id")

        job_id = d.pop("job_id")

        kind = CheckpointKind(d.pop("kind"))

        def _parse_lora_path(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        lora_path = _parse_lora_path(d.pop("lora_path"))

        size = d.pop("size")

        step = d.pop("step")

        checkpoint = cls(
            attempt=attempt,
            created_at=created_at,
            files=files,
            id=id,
            job_id=job_id,
            kind=kind,
            lora_path=lora_path,
            size=size,
            step=step,
        )

        checkpoint.additional_properties = d
        return checkpoint

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
