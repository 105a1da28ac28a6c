from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="ClaimRequest")


@_attrs_define
class ClaimRequest:
    """
    Attributes:
        worker_id (str):
        device (None | str | Unset):
        devices (int | Unset): Devices the worker offers; it is given only jobs that need at most that many (or `all`).
            Default: 1.
        wait_seconds (float | Unset): Long-poll up to this long (capped). Default: 0.0.
    """

    worker_id: str
    device: None | str | Unset = UNSET
    devices: int | Unset = 1
    wait_seconds: float | Unset = 0.0
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        worker_id = self.worker_id

        device: None | str | Unset
        if isinstance(self.device, Unset):
            device = UNSET
        else:
            device = self.device

        devices = self.devices

        wait_seconds = self.wait_seconds

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "worker_id": worker_id,
            }
        )
        if device is not UNSET:
            field_dict["device"] = device
        if devices is not UNSET:
            field_dict["devices"] = devices
        if wait_seconds is not UNSET:
            field_dict["wait_seconds"] = wait_seconds

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        worker_id = d.pop("worker_id")

        def _parse_device(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        device = _parse_device(d.pop("device", UNSET))

        devices = d.pop("devices", UNSET)

        wait_seconds = d.pop("wait_seconds", UNSET)

        claim_request = cls(
            worker_id=worker_id,
            device=device,
            devices=devices,
            wait_seconds=wait_seconds,
        )

        claim_request.additional_properties = d
        return claim_request

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
