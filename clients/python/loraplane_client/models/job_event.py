from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.job_event_data import JobEventData


T = TypeVar("T", bound="JobEvent")


@_attrs_define
class JobEvent:
    """
    Attributes:
        created_at (datetime.datetime):
        data (JobEventData):
        id (int):
        job_id (str):
        kind (str): `state`, `log`, `metrics` or `checkpoint`.
    """

    created_at: datetime.datetime
    data: JobEventData
    id: int
    job_id: str
    kind: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at.isoformat()

        data = self.data.to_dict()

        id = self.id

        job_id = self.job_id

        kind = self.kind

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "data": data,
                "id": id,
                "job_id": job_id,
                "kind": kind,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.job_event_data import JobEventData

        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        data = JobEventData.from_dict(d.pop("data"))

        id = d.pop("id")

        job_id = d.pop("job_id")

        kind = d.pop("kind")

        job_event = cls(
            created_at=created_at,
            data=data,
            id=id,
            job_id=job_id,
            kind=kind,
        )

        job_event.additional_properties = d
        return job_event

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
