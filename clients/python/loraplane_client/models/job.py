from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.job_kind import JobKind
from ..models.job_state import JobState
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.job_error import JobError
    from ..models.job_metrics_type_0 import JobMetricsType0
    from ..models.job_spec import JobSpec
    from ..models.progress import Progress


T = TypeVar("T", bound="Job")


@_attrs_define
class Job:
    """A job as clients see it: training, or an evaluation or a sample (their own views are
    `Evaluation` and `Sample`).

        Attributes:
            adapter_id (None | str):
            attempt (int):
            created_at (datetime.datetime):
            error (JobError | None):
            finished_at (datetime.datetime | None):
            id (str):
            ignored_keys (list[str]): Keys of the submitted spec the service does not use.
            lease_expires_at (datetime.datetime | None):
            max_attempts (int):
            metrics (JobMetricsType0 | None):
            name (None | str):
            parent_adapter_id (None | str):
            priority (int):
            progress (Progress):
            project (str):
            spec (JobSpec): A training job: the RLinf sections loraplane acts on, plus queue options.
            started_at (datetime.datetime | None):
            state (JobState):
            worker_id (None | str):
            devices (int | None | Unset): Devices the job runs on (`cluster.component_placement.actor`); null: `all`, every
                device of the worker that claims it. Default: 1.
            kind (JobKind | Unset): What a job does; every kind moves through the same states (TRANSITIONS).
            warnings (list[str] | Unset): Only in the answer to POST /jobs: what in the spec makes an adapter an engine
                refuses (a lora_rank vLLM serves only with a larger --max-lora-rank, or continuing an adapter vLLM refuses); the
                job is queued all the same.
    """

    adapter_id: None | str
    attempt: int
    created_at: datetime.datetime
    error: JobError | None
    finished_at: datetime.datetime | None
    id: str
    ignored_keys: list[str]
    lease_expires_at: datetime.datetime | None
    max_attempts: int
    metrics: JobMetricsType0 | None
    name: None | str
    parent_adapter_id: None | str
    priority: int
    progress: Progress
    project: str
    spec: JobSpec
    started_at: datetime.datetime | None
    state: JobState
    worker_id: None | str
    devices: int | None | Unset = 1
    kind: JobKind | Unset = UNSET
    warnings: list[str] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.job_error import JobError
        from ..models.job_metrics_type_0 import JobMetricsType0

        adapter_id: None | str
        adapter_id = self.adapter_id

        attempt = self.attempt

        created_at = self.created_at.isoformat()

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

        ignored_keys = self.ignored_keys

        lease_expires_at: None | str
        if isinstance(self.lease_expires_at, datetime.datetime):
            lease_expires_at = self.lease_expires_at.isoformat()
        else:
            lease_expires_at = self.lease_expires_at

        max_attempts = self.max_attempts

        metrics: dict[str, Any] | None
        if isinstance(self.metrics, JobMetricsType0):
            metrics = self.metrics.to_dict()
        else:
            metrics = self.metrics

        name: None | str
        name = self.name

        parent_adapter_id: None | str
        parent_adapter_id = self.parent_adapter_id

        priority = self.priority

        progress = self.progress.to_dict()

        project = self.project

        spec = self.spec.to_dict()

        started_at: None | str
        if isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        state = self.state.value

        worker_id: None | str
        worker_id = self.worker_id

        devices: int | None | Unset
        if isinstance(self.devices, Unset):
            devices = UNSET
        else:
            devices = self.devices

        kind: str | Unset = UNSET
        if not isinstance(self.kind, Unset):
            kind = self.kind.value

        warnings: list[str] | Unset = UNSET
        if not isinstance(self.warnings, Unset):
            warnings = self.warnings

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "adapter_id": adapter_id,
                "attempt": attempt,
                "created_at": created_at,
                "error": error,
                "finished_at": finished_at,
                "id": id,
                "ignored_keys": ignored_keys,
                "lease_expires_at": lease_expires_at,
                "max_attempts": max_attempts,
                "metrics": metrics,
                "name": name,
                "parent_adapter_id": parent_adapter_id,
                "priority": priority,
                "progress": progress,
                "project": project,
                "spec": spec,
                "started_at": started_at,
                "state": state,
                "worker_id": worker_id,
            }
        )
        if devices is not UNSET:
            field_dict["devices"] = devices
        if kind is not UNSET:
            field_dict["kind"] = kind
        if warnings is not UNSET:
            field_dict["warnings"] = warnings

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.job_error import JobError
        from ..models.job_metrics_type_0 import JobMetricsType0
        from ..models.job_spec import JobSpec
        from ..models.progress import Progress

        d = dict(src_dict)

        def _parse_adapter_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        adapter_id = _parse_adapter_id(d.pop("adapter_id"))

        attempt = d.pop("attempt")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

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

        ignored_keys = cast(list[str], d.pop("ignored_keys"))

        def _parse_lease_expires_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                lease_expires_at_type_0 = datetime.datetime.fromisoformat(data)

                return lease_expires_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        lease_expires_at = _parse_lease_expires_at(d.pop("lease_expires_at"))

        max_attempts = d.pop("max_attempts")

        def _parse_metrics(data: object) -> JobMetricsType0 | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                metrics_type_0 = JobMetricsType0.from_dict(data)

                return metrics_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobMetricsType0 | None, data)

        metrics = _parse_metrics(d.pop("metrics"))

        def _parse_name(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        name = _parse_name(d.pop("name"))

        def _parse_parent_adapter_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        parent_adapter_id = _parse_parent_adapter_id(d.pop("parent_adapter_id"))

        priority = d.pop("priority")

        progress = Progress.from_dict(d.pop("progress"))

        project = d.pop("project")

        spec = JobSpec.from_dict(d.pop("spec"))

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

        def _parse_worker_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        worker_id = _parse_worker_id(d.pop("worker_id"))

        def _parse_devices(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        devices = _parse_devices(d.pop("devices", UNSET))

        _kind = d.pop("kind", UNSET)
        kind: JobKind | Unset
        if isinstance(_kind, Unset):
            kind = UNSET
        else:
            kind = JobKind(_kind)

        warnings = cast(list[str], d.pop("warnings", UNSET))

        job = cls(
            adapter_id=adapter_id,
            attempt=attempt,
            created_at=created_at,
            error=error,
            finished_at=finished_at,
            id=id,
            ignored_keys=ignored_keys,
            lease_expires_at=lease_expires_at,
            max_attempts=max_attempts,
            metrics=metrics,
            name=name,
            parent_adapter_id=parent_adapter_id,
            priority=priority,
            progress=progress,
            project=project,
            spec=spec,
            started_at=started_at,
            state=state,
            worker_id=worker_id,
            devices=devices,
            kind=kind,
            warnings=warnings,
        )

        job.additional_properties = d
        return job

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
