from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.adapter_result_kind import AdapterResultKind
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.adapter_result_metrics_type_0 import AdapterResultMetricsType0
    from ..models.file_ref import FileRef


T = TypeVar("T", bound="AdapterResult")


@_attrs_define
class AdapterResult:
    """What a finished training run hands the registry (its files are already stored).

    Attributes:
        files (list[FileRef]):
        kind (AdapterResultKind):
        alpha (float | None | Unset):
        base_fingerprint (None | str | Unset):
        metrics (AdapterResultMetricsType0 | None | Unset):
        rank (int | None | Unset): LoRA rank r; read from adapter_config.json if null.
        target_modules (list[str] | Unset): Module names actually wrapped.
    """

    files: list[FileRef]
    kind: AdapterResultKind
    alpha: float | None | Unset = UNSET
    base_fingerprint: None | str | Unset = UNSET
    metrics: AdapterResultMetricsType0 | None | Unset = UNSET
    rank: int | None | Unset = UNSET
    target_modules: list[str] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.adapter_result_metrics_type_0 import AdapterResultMetricsType0

        files = []
        for files_item_data in self.files:
            files_item = files_item_data.to_dict()
            files.append(files_item)

        kind = self.kind.value

        alpha: float | None | Unset
        if isinstance(self.alpha, Unset):
            alpha = UNSET
        else:
            alpha = self.alpha

        base_fingerprint: None | str | Unset
        if isinstance(self.base_fingerprint, Unset):
            base_fingerprint = UNSET
        else:
            base_fingerprint = self.base_fingerprint

        metrics: dict[str, Any] | None | Unset
        if isinstance(self.metrics, Unset):
            metrics = UNSET
        elif isinstance(self.metrics, AdapterResultMetricsType0):
            metrics = self.metrics.to_dict()
        else:
            metrics = self.metrics

        rank: int | None | Unset
        if isinstance(self.rank, Unset):
            rank = UNSET
        else:
            rank = self.rank

        target_modules: list[str] | Unset = UNSET
        if not isinstance(self.target_modules, Unset):
            target_modules = self.target_modules

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "files": files,
                "kind": kind,
            }
        )
        if alpha is not UNSET:
            field_dict["alpha"] = alpha
        if base_fingerprint is not UNSET:
            field_dict["base_fingerprint"] = base_fingerprint
        if metrics is not UNSET:
            field_dict["metrics"] = metrics
        if rank is not UNSET:
            field_dict["rank"] = rank
        if target_modules is not UNSET:
            field_dict["target_modules"] = target_modules

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.adapter_result_metrics_type_0 import AdapterResultMetricsType0
        from ..models.file_ref import FileRef

        d = dict(src_dict)
        files = []
        _files = d.pop("files")
        for files_item_data in _files:
            files_item = FileRef.from_dict(files_item_data)

            files.append(files_item)

        kind = AdapterResultKind(d.pop("kind"))

        def _parse_alpha(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        alpha = _parse_alpha(d.pop("alpha", UNSET))

        def _parse_base_fingerprint(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        base_fingerprint = _parse_base_fingerprint(d.pop("base_fingerprint", UNSET))

        def _parse_metrics(data: object) -> AdapterResultMetricsType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                metrics_type_0 = AdapterResultMetricsType0.from_dict(data)

                return metrics_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(AdapterResultMetricsType0 | None | Unset, data)

        metrics = _parse_metrics(d.pop("metrics", UNSET))

        def _parse_rank(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        rank = _parse_rank(d.pop("rank", UNSET))

        target_modules = cast(list[str], d.pop("target_modules", UNSET))

        adapter_result = cls(
            files=files,
            kind=kind,
            alpha=alpha,
            base_fingerprint=base_fingerprint,
            metrics=metrics,
            rank=rank,
            target_modules=target_modules,
        )

        adapter_result.additional_properties = d
        return adapter_result

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
