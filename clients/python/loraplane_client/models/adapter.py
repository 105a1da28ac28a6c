from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.adapter_kind import AdapterKind
from ..models.adapter_source import AdapterSource
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.adapter_metrics_type_0 import AdapterMetricsType0
    from ..models.adapter_tags import AdapterTags
    from ..models.evaluation_summary import EvaluationSummary
    from ..models.file_ref import FileRef
    from ..models.lineage_entry import LineageEntry
    from ..models.serving_verdicts import ServingVerdicts


T = TypeVar("T", bound="Adapter")


@_attrs_define
class Adapter:
    """A registered adapter (or full fine-tuned model) as clients see it.

    Attributes:
        aliases (list[str]):
        alpha (float | None):
        base_fingerprint (None | str):
        base_model (str): The `model_path` it was trained on.
        created_at (datetime.datetime):
        description (None | str):
        digest (None | str): sha256 over `name\\0sha256\\n` of the files sorted by name: the same bytes under the same
            name are the same version.
        download_url (str): The PEFT folder as one tar stream.
        files (list[FileRef]):
        id (str):
        job_id (None | str):
        kind (AdapterKind):
        lineage (list[LineageEntry]): Ancestors, nearest first, back to the first.
        lora_path (str): Pass as `actor.model.lora_path` to continue from it.
        metrics (AdapterMetricsType0 | None):
        name (str):
        parent_adapter_id (None | str):
        rank (int | None):
        source (AdapterSource): `job`: trained by a worker; `import`: uploaded with POST /adapters.
        tags (AdapterTags):
        target_modules (list[str]):
        version (int): Monotonic per name, from 1.
        evaluations (list[EvaluationSummary] | Unset): Evaluations of this adapter (POST /evaluations), newest first (50
            at most).
        serving (None | ServingVerdicts | Unset): Whether vLLM and peft load it (LoRA adapters); null for a full model.
    """

    aliases: list[str]
    alpha: float | None
    base_fingerprint: None | str
    base_model: str
    created_at: datetime.datetime
    description: None | str
    digest: None | str
    download_url: str
    files: list[FileRef]
    id: str
    job_id: None | str
    kind: AdapterKind
    lineage: list[LineageEntry]
    lora_path: str
    metrics: AdapterMetricsType0 | None
    name: str
    parent_adapter_id: None | str
    rank: int | None
    source: AdapterSource
    tags: AdapterTags
    target_modules: list[str]
    version: int
    evaluations: list[EvaluationSummary] | Unset = UNSET
    serving: None | ServingVerdicts | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.adapter_metrics_type_0 import AdapterMetricsType0
        from ..models.serving_verdicts import ServingVerdicts

        aliases = self.aliases

        alpha: float | None
        alpha = self.alpha

        base_fingerprint: None | str
        base_fingerprint = self.base_fingerprint

        base_model = self.base_model

        created_at = self.created_at.isoformat()

        description: None | str
        description = self.description

        digest: None | str
        digest = self.digest

        download_url = self.download_url

        files = []
        for files_item_data in self.files:
            files_item = files_item_data.to_dict()
            files.append(files_item)

        id = self.id

        job_id: None | str
        job_id = self.job_id

        kind = self.kind.value

        lineage = []
        for lineage_item_data in self.lineage:
            lineage_item = lineage_item_data.to_dict()
            lineage.append(lineage_item)

        lora_path = self.lora_path

        metrics: dict[str, Any] | None
        if isinstance(self.metrics, AdapterMetricsType0):
            metrics = self.metrics.to_dict()
        else:
            metrics = self.metrics

        name = self.name

        parent_adapter_id: None | str
        parent_adapter_id = self.parent_adapter_id

        rank: int | None
        rank = self.rank

        source = self.source.value

        tags = self.tags.to_dict()

        target_modules = self.target_modules

        version = self.version

        evaluations: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.evaluations, Unset):
            evaluations = []
            for evaluations_item_data in self.evaluations:
                evaluations_item = evaluations_item_data.to_dict()
                evaluations.append(evaluations_item)

        serving: dict[str, Any] | None | Unset
        if isinstance(self.serving, Unset):
            serving = UNSET
        elif isinstance(self.serving, ServingVerdicts):
            serving = self.serving.to_dict()
        else:
            serving = self.serving

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "aliases": aliases,
                "alpha": alpha,
                "base_fingerprint": base_fingerprint,
                "base_model": base_model,
                "created_at": created_at,
                "description": description,
                "digest": digest,
                "download_url": download_url,
                "files": files,
                "id": id,
                "job_id": job_id,
                "kind": kind,
                "lineage": lineage,
                "lora_path": lora_path,
                "metrics": metrics,
                "name": name,
                "parent_adapter_id": parent_adapter_id,
                "rank": rank,
                "source": source,
                "tags": tags,
                "target_modules": target_modules,
                "version": version,
            }
        )
        if evaluations is not UNSET:
            field_dict["evaluations"] = evaluations
        if serving is not UNSET:
            field_dict["serving"] = serving

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.adapter_metrics_type_0 import AdapterMetricsType0
        from ..models.adapter_tags import AdapterTags
        from ..models.evaluation_summary import EvaluationSummary
        from ..models.file_ref import FileRef
        from ..models.lineage_entry import LineageEntry
        from ..models.serving_verdicts import ServingVerdicts

        d = dict(src_dict)
        aliases = cast(list[str], d.pop("aliases"))

        def _parse_alpha(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        alpha = _parse_alpha(d.pop("alpha"))

        def _parse_base_fingerprint(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        base_fingerprint = _parse_base_fingerprint(d.pop("base_fingerprint"))

        base_model = d.pop("base_model")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        def _parse_description(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        description = _parse_description(d.pop("description"))

        def _parse_digest(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        digest = _parse_digest(d.pop("digest"))

        download_url = d.pop("download_url")

        files = []
        _files = d.pop("files")
        for files_item_data in _files:
            files_item = FileRef.from_dict(files_item_data)

            files.append(files_item)

        id = d.pop("id")

        def _parse_job_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        job_id = _parse_job_id(d.pop("job_id"))

        kind = AdapterKind(d.pop("kind"))

        lineage = []
        _lineage = d.pop("lineage")
        for lineage_item_data in _lineage:
            lineage_item = LineageEntry.from_dict(lineage_item_data)

            lineage.append(lineage_item)

        lora_path = d.pop("lora_path")

        def _parse_metrics(data: object) -> AdapterMetricsType0 | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                metrics_type_0 = AdapterMetricsType0.from_dict(data)

                return metrics_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(AdapterMetricsType0 | None, data)

        metrics = _parse_metrics(d.pop("metrics"))

        name = d.pop("name")

        def _parse_parent_adapter_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        parent_adapter_id = _parse_parent_adapter_id(d.pop("parent_adapter_id"))

        def _parse_rank(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        rank = _parse_rank(d.pop("rank"))

        source = AdapterSource(d.pop("source"))

        tags = AdapterTags.from_dict(d.pop("tags"))

        target_modules = cast(list[str], d.pop("target_modules"))

        version = d.pop("version")

        _evaluations = d.pop("evaluations", UNSET)
        evaluations: list[EvaluationSummary] | Unset = UNSET
        if _evaluations is not UNSET:
            evaluations = []
            for evaluations_item_data in _evaluations:
                evaluations_item = EvaluationSummary.from_dict(evaluations_item_data)

                evaluations.append(evaluations_item)

        def _parse_serving(data: object) -> None | ServingVerdicts | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                serving_type_0 = ServingVerdicts.from_dict(data)

                return serving_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | ServingVerdicts | Unset, data)

        serving = _parse_serving(d.pop("serving", UNSET))

        adapter = cls(
            aliases=aliases,
            alpha=alpha,
            base_fingerprint=base_fingerprint,
            base_model=base_model,
            created_at=created_at,
            description=description,
            digest=digest,
            download_url=download_url,
            files=files,
            id=id,
            job_id=job_id,
            kind=kind,
            lineage=lineage,
            lora_path=lora_path,
            metrics=metrics,
            name=name,
            parent_adapter_id=parent_adapter_id,
            rank=rank,
            source=source,
            tags=tags,
            target_modules=target_modules,
            version=version,
            evaluations=evaluations,
            serving=serving,
        )

        adapter.additional_properties = d
        return adapter

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
