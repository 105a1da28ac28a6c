from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.evaluation_results import EvaluationResults
    from ..models.sample_results import SampleResults


T = TypeVar("T", bound="TaskResult")


@_attrs_define
class TaskResult:
    """A worker's result for an evaluation (`evaluation`) or a sample job (`sample`).

    Attributes:
        evaluation (EvaluationResults | None | Unset):
        sample (None | SampleResults | Unset):
    """

    evaluation: EvaluationResults | None | Unset = UNSET
    sample: None | SampleResults | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.evaluation_results import EvaluationResults
        from ..models.sample_results import SampleResults

        evaluation: dict[str, Any] | None | Unset
        if isinstance(self.evaluation, Unset):
            evaluation = UNSET
        elif isinstance(self.evaluation, EvaluationResults):
            evaluation = self.evaluation.to_dict()
        else:
            evaluation = self.evaluation

        sample: dict[str, Any] | None | Unset
        if isinstance(self.sample, Unset):
            sample = UNSET
        elif isinstance(self.sample, SampleResults):
            sample = self.sample.to_dict()
        else:
            sample = self.sample

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if evaluation is not UNSET:
            field_dict["evaluation"] = evaluation
        if sample is not UNSET:
            field_dict["sample"] = sample

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.evaluation_results import EvaluationResults
        from ..models.sample_results import SampleResults

        d = dict(src_dict)

        def _parse_evaluation(data: object) -> EvaluationResults | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                evaluation_type_0 = EvaluationResults.from_dict(data)

                return evaluation_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(EvaluationResults | None | Unset, data)

        evaluation = _parse_evaluation(d.pop("evaluation", UNSET))

        def _parse_sample(data: object) -> None | SampleResults | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                sample_type_0 = SampleResults.from_dict(data)

                return sample_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SampleResults | Unset, data)

        sample = _parse_sample(d.pop("sample", UNSET))

        task_result = cls(
            evaluation=evaluation,
            sample=sample,
        )

        task_result.additional_properties = d
        return task_result

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
