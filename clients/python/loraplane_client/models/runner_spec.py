from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="RunnerSpec")


@_attrs_define
class RunnerSpec:
    """`runner`: run length, checkpoints, naming.

    Attributes:
        experiment_name (None | str | Unset): Name the adapter is registered under.
        max_epochs (int | Unset):  Default: 1.
        max_steps (int | Unset): -1: max_epochs decides. Default: -1.
        save_interval (int | Unset): Optimizer steps between checkpoints; -1: none. Default: 100.
        val_check_interval (int | Unset): Steps between validations; -1: none. Default: -1.
    """

    experiment_name: None | str | Unset = UNSET
    max_epochs: int | Unset = 1
    max_steps: int | Unset = -1
    save_interval: int | Unset = 100
    val_check_interval: int | Unset = -1

    def to_dict(self) -> dict[str, Any]:
        experiment_name: None | str | Unset
        if isinstance(self.experiment_name, Unset):
            experiment_name = UNSET
        else:
            experiment_name = self.experiment_name

        max_epochs = self.max_epochs

        max_steps = self.max_steps

        save_interval = self.save_interval

        val_check_interval = self.val_check_interval

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if experiment_name is not UNSET:
            field_dict["experiment_name"] = experiment_name
        if max_epochs is not UNSET:
            field_dict["max_epochs"] = max_epochs
        if max_steps is not UNSET:
            field_dict["max_steps"] = max_steps
        if save_interval is not UNSET:
            field_dict["save_interval"] = save_interval
        if val_check_interval is not UNSET:
            field_dict["val_check_interval"] = val_check_interval

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)

        def _parse_experiment_name(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        experiment_name = _parse_experiment_name(d.pop("experiment_name", UNSET))

        max_epochs = d.pop("max_epochs", UNSET)

        max_steps = d.pop("max_steps", UNSET)

        save_interval = d.pop("save_interval", UNSET)

        val_check_interval = d.pop("val_check_interval", UNSET)

        runner_spec = cls(
            experiment_name=experiment_name,
            max_epochs=max_epochs,
            max_steps=max_steps,
            save_interval=save_interval,
            val_check_interval=val_check_interval,
        )

        return runner_spec
