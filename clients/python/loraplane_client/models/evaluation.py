from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.job_state import JobState

if TYPE_CHECKING:
    from ..models.evaluation_results import EvaluationResults
    from ..models.job_error import JobError


T = TypeVar("T", bound="Evaluation")


@_attrs_define
class Evaluation:
    """
    Attributes:
        adapter (None | str): As submitted.
        adapter_id (None | str): The registry adapter it resolved to, if any.
        attempt (int):
        base_model (str):
        checkpoint_id (None | str):
        created_at (datetime.datetime):
        dataset (str):
        error (JobError | None):
        finished_at (datetime.datetime | None):
        id (str): The job's id (`job_…`): its events are at /jobs/{id}/events.
        max_attempts (int):
        max_new_tokens (int):
        max_samples (int):
        results (EvaluationResults | None): Set once it succeeded.
        started_at (datetime.datetime | None):
        state (JobState):
    """

    adapter: None | str
    adapter_id: None | str
    attempt: int
    base_model: str
    checkpoint_id: None | str
    created_at: datetime.datetime
    dataset: str
    error: JobError | None
    finished_at: datetime.datetime | None
    id: str
    max_attempts: int
    max_new_tokens: int
    max_samples: int
    results: EvaluationResults | None
    started_at: datetime.datetime | None
    state: JobState
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.evaluation_results import EvaluationResults
        from ..models.job_error import JobError

        adapter: None | str
        adapter = self.adapter

        adapter_id: None | str
        adapter_id = self.adapter_id

        attempt = self.attempt

        base_model = self.base_model

        checkpoint_id: None | str
        checkpoint_id = self.checkpoint_id

        created_at = self.created_at.isoformat()

        dataset = self.dataset

        error: dict[str, Any] | None
        if isinstance(self.error, JobError):
            error = self.error.to_dict()
        else:
            error = self.error

        finished_at: None | str
        if isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        id = self.id

        max_attempts = self.max_attempts

        max_new_tokens = self.max_new_tokens

        max_samples = self.max_samples

        results: dict[str, Any] | None
        if isinstance(self.results, EvaluationResults):
            results = self.results.to_dict()
        else:
            results = self.results

        started_at: None | str
        if isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        state = self.state.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "adapter": adapter,
                "adapter_id": adapter_id,
                "attempt": attempt,
                "base_model": base_model,
                "checkpoint_id": checkpoint_id,
                "created_at": created_at,
                "dataset": dataset,
                "error": error,
                "finished_at": finished_at,
                "id": id,
                "max_attempts": max_attempts,
                "max_new_tokens": max_new_tokens,
                "max_samples": max_samples,
                "results": results,
                "started_at": started_at,
                "state": state,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.evaluation_results import EvaluationResults
        from ..models.job_error import JobError

        d = dict(src_dict)

        def _parse_adapter(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        adapter = _parse_adapter(d.pop("adapter"))

        def _parse_adapter_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        adapter_id = _parse_adapter_id(d.pop("adapter_id"))

        attempt = d.pop("attempt")

        base_model = d.pop("base_model")

        def _parse_checkpoint_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        checkpoint_id = _parse_checkpoint_id(d.pop("checkpoint_id"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        dataset = d.pop("dataset")

        def _parse_error(data: object) -> JobError | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                error_type_0 = JobError.from_dict(data)

                return error_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobError | None, data)

        error = _parse_error(d.pop("error"))

        def _parse_finished_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                finished_at_type_0 = datetime.datetime.fromisoformat(data)

                return finished_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        finished_at = _parse_finished_at(d.pop("finished_at"))

        id = d.pop("id")

        max_attempts = d.pop("max_attempts")

        max_new_tokens = d.pop("max_new_tokens")

        max_samples = d.pop("max_samples")

        def _parse_results(data: object) -> EvaluationResults | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                results_type_0 = EvaluationResults.from_dict(data)

                return results_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(EvaluationResults | None, data)

        results = _parse_results(d.pop("results"))

        def _parse_started_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                started_at_type_0 = datetime.datetime.fromisoformat(data)

                return started_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        started_at = _parse_started_at(d.pop("started_at"))

        state = JobState(d.pop("state"))

        evaluation = cls(
            adapter=adapter,
            adapter_id=adapter_id,
            attempt=attempt,
            base_model=base_model,
            checkpoint_id=checkpoint_id,
            created_at=created_at,
            dataset=dataset,
            error=error,
            finished_at=finished_at,
            id=id,
            max_attempts=max_attempts,
            max_new_tokens=max_new_tokens,
            max_samples=max_samples,
            results=results,
            started_at=started_at,
            state=state,
        )

        evaluation.additional_properties = d
        return evaluation

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
