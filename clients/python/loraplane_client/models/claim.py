from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.job_kind import JobKind
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.claim_datasets import ClaimDatasets
    from ..models.job import Job
    from ..models.lora_source import LoraSource
    from ..models.resume_point import ResumePoint
    from ..models.task import Task


T = TypeVar("T", bound="Claim")


@_attrs_define
class Claim:
    """A lease plus the job's inputs.

    Attributes:
        heartbeat_seconds (float): How often the worker should heartbeat.
        job (Job): A job as clients see it: training, or an evaluation or a sample (their own views are
            `Evaluation` and `Sample`).
        lease_expires_at (datetime.datetime):
        lease_id (str):
        lease_seconds (float):
        checkpoint (None | ResumePoint | Unset): Resume here instead of step 0.
        datasets (ClaimDatasets | Unset): Uploaded datasets (`ds_…`) the spec names.
        kind (JobKind | Unset): What a job does; every kind moves through the same states (TRANSITIONS).
        lora_source (LoraSource | None | Unset): The adapter `lora_path` names.
        task (None | Task | Unset): An evaluation's or a sample's parameters.
    """

    heartbeat_seconds: float
    job: Job
    lease_expires_at: datetime.datetime
    lease_id: str
    lease_seconds: float
    checkpoint: None | ResumePoint | Unset = UNSET
    datasets: ClaimDatasets | Unset = UNSET
    kind: JobKind | Unset = UNSET
    lora_source: LoraSource | None | Unset = UNSET
    task: None | Task | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.lora_source import LoraSource
        from ..models.resume_point import ResumePoint
        from ..models.task import Task

        heartbeat_seconds = self.heartbeat_seconds

        job = self.job.to_dict()

        lease_expires_at = self.lease_expires_at.isoformat()

        lease_id = self.lease_id

        lease_seconds = self.lease_seconds

        checkpoint: dict[str, Any] | None | Unset
        if isinstance(self.checkpoint, Unset):
            checkpoint = UNSET
        elif isinstance(self.checkpoint, ResumePoint):
            checkpoint = self.checkpoint.to_dict()
        else:
            checkpoint = self.checkpoint

        datasets: dict[str, Any] | Unset = UNSET
        if not isinstance(self.datasets, Unset):
            datasets = self.datasets.to_dict()

        kind: str | Unset = UNSET
        if not isinstance(self.kind, Unset):
            kind = self.kind.value

        lora_source: dict[str, Any] | None | Unset
        if isinstance(self.lora_source, Unset):
            lora_source = UNSET
        elif isinstance(self.lora_source, LoraSource):
            lora_source = self.lora_source.to_dict()
        else:
            lora_source = self.lora_source

        task: dict[str, Any] | None | Unset
        if isinstance(self.task, Unset):
            task = UNSET
        elif isinstance(self.task, Task):
            task = self.task.to_dict()
        else:
            task = self.task

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "heartbeat_seconds": heartbeat_seconds,
                "job": job,
                "lease_expires_at": lease_expires_at,
                "lease_id": lease_id,
                "lease_seconds": lease_seconds,
            }
        )
        if checkpoint is not UNSET:
            field_dict["checkpoint"] = checkpoint
        if datasets is not UNSET:
            field_dict["datasets"] = datasets
        if kind is not UNSET:
            field_dict["kind"] = kind
        if lora_source is not UNSET:
            field_dict["lora_source"] = lora_source
        if task is not UNSET:
            field_dict["task"] = task

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.claim_datasets import ClaimDatasets
        from ..models.job import Job
        from ..models.lora_source import LoraSource
        from ..models.resume_point import ResumePoint
        from ..models.task import Task

        d = dict(src_dict)
        heartbeat_seconds = d.pop("heartbeat_seconds")

        job = Job.from_dict(d.pop("job"))

        lease_expires_at = datetime.datetime.fromisoformat(d.pop("lease_expires_at"))

        lease_id = d.pop("lease_id")

        lease_seconds = d.pop("lease_seconds")

        def _parse_checkpoint(data: object) -> None | ResumePoint | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                checkpoint_type_0 = ResumePoint.from_dict(data)

                return checkpoint_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | ResumePoint | Unset, data)

        checkpoint = _parse_checkpoint(d.pop("checkpoint", UNSET))

        _datasets = d.pop("datasets", UNSET)
        datasets: ClaimDatasets | Unset
        if isinstance(_datasets, Unset):
            datasets = UNSET
        else:
            datasets = ClaimDatasets.from_dict(_datasets)

        _kind = d.pop("kind", UNSET)
        kind: JobKind | Unset
        if isinstance(_kind, Unset):
            kind = UNSET
        else:
            kind = JobKind(_kind)

        def _parse_lora_source(data: object) -> LoraSource | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                lora_source_type_0 = LoraSource.from_dict(data)

                return lora_source_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(LoraSource | None | Unset, data)

        lora_source = _parse_lora_source(d.pop("lora_source", UNSET))

        def _parse_task(data: object) -> None | Task | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                task_type_0 = Task.from_dict(data)

                return task_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Task | Unset, data)

        task = _parse_task(d.pop("task", UNSET))

        claim = cls(
            heartbeat_seconds=heartbeat_seconds,
            job=job,
            lease_expires_at=lease_expires_at,
            lease_id=lease_id,
            lease_seconds=lease_seconds,
            checkpoint=checkpoint,
            datasets=datasets,
            kind=kind,
            lora_source=lora_source,
            task=task,
        )

        claim.additional_properties = d
        return claim

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
