from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.job_state import JobState

T = TypeVar("T", bound="EvaluationSummary")


@_attrs_define
class EvaluationSummary:
    """An evaluation as listed on its adapter.

    Attributes:
        created_at (datetime.datetime):
        dataset (str):
        exact_match (float | None):
        id (str):
        loss (float | None):
        perplexity (float | None):
        state (JobState):
    """

    created_at: datetime.datetime
    dataset: str
    exact_match: float | None
    id: str
    loss: float | None
    perplexity: float | None
    state: JobState
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at.isoformat()

        dataset = self.dataset

        exact_match: float | None
        exact_match = self.exact_match

        id = self.id

        loss: float | None
        loss = self.loss

        perplexity: float | None
        perplexity = self.perplexity

        state = self.state.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "dataset": dataset,
                "exact_match": exact_match,
                "id": id,
                "loss": loss,
                "perplexity": perplexity,
                "state": state,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        dataset = d.pop("dataset")

        def _parse_exact_match(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        exact_match = _parse_exact_match(d.pop("exact_match"))

        id = d.pop("id")

        def _parse_loss(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        loss = _parse_loss(d.pop("loss"))

        def _parse_perplexity(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        perplexity = _parse_perplexity(d.pop("perplexity"))

        state = JobState(d.pop("state"))

        evaluation_summary = cls(
            created_at=created_at,
            dataset=dataset,
            exact_match=exact_match,
            id=id,
            loss=loss,
            perplexity=perplexity,
            state=state,
        )

        evaluation_summary.additional_properties = d
        return evaluation_summary

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
