from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.model_spec_precision_type_0 import ModelSpecPrecisionType0
from ..types import UNSET, Unset

T = TypeVar("T", bound="ModelSpec")


@_attrs_define
class ModelSpec:
    """`actor.model`: the base model and how it is fine-tuned.

    Attributes:
        model_path (str): HF-format model folder: an absolute path on the workers, or a bare name looked up in the
            workers' models directory (e.g. `demo-tiny-llama`).
        gradient_checkpointing (bool | None | Unset): Activation checkpointing (recompute each layer in backward). On
            when this or `actor.fsdp_config.gradient_checkpointing` is true.
        is_lora (bool | Unset): true: LoRA fine-tuning; false: full fine-tuning. Default: False.
        lora_alpha (float | int | None | Unset): LoRA scaling numerator; defaults to lora_rank.
        lora_dropout (float | Unset): Dropout on the LoRA input. Default: 0.0.
        lora_path (None | str | Unset): Adapter to continue from (registry reference, checkpoint, or allowed worker-
            local folder); null starts a new adapter.
        lora_rank (int | None | Unset): Rank r of the LoRA A/B matrices (>= 1); ignored when is_lora is false.
        precision (ModelSpecPrecisionType0 | None | Unset): Training precision: for LoRA the frozen base weights are
            held in it (LoRA weights and AdamW state stay fp32); full fine-tuning keeps fp32 master weights and computes in
            it under autocast; fp16 uses a grad scaler. Honoured on CPU too. null: bf16 on a CUDA device that supports it,
            else fp32. `actor.fsdp_config.mixed_precision.param_dtype` wins when set.
        target_modules (list[str] | None | Unset): Module-name suffixes to wrap; defaults to RLinf's list.
    """

    model_path: str
    gradient_checkpointing: bool | None | Unset = UNSET
    is_lora: bool | Unset = False
    lora_alpha: float | int | None | Unset = UNSET
    lora_dropout: float | Unset = 0.0
    lora_path: None | str | Unset = UNSET
    lora_rank: int | None | Unset = UNSET
    precision: ModelSpecPrecisionType0 | None | Unset = UNSET
    target_modules: list[str] | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        model_path = self.model_path

        gradient_checkpointing: bool | None | Unset
        if isinstance(self.gradient_checkpointing, Unset):
            gradient_checkpointing = UNSET
        else:
            gradient_checkpointing = self.gradient_checkpointing

        is_lora = self.is_lora

        lora_alpha: float | int | None | Unset
        if isinstance(self.lora_alpha, Unset):
            lora_alpha = UNSET
        else:
            lora_alpha = self.lora_alpha

        lora_dropout = self.lora_dropout

        lora_path: None | str | Unset
        if isinstance(self.lora_path, Unset):
            lora_path = UNSET
        else:
            lora_path = self.lora_path

        lora_rank: int | None | Unset
        if isinstance(self.lora_rank, Unset):
            lora_rank = UNSET
        else:
            lora_rank = self.lora_rank

        precision: None | str | Unset
        if isinstance(self.precision, Unset):
            precision = UNSET
        elif isinstance(self.precision, ModelSpecPrecisionType0):
            precision = self.precision.value
        else:
            precision = self.precision

        target_modules: list[str] | None | Unset
        if isinstance(self.target_modules, Unset):
            target_modules = UNSET
        elif isinstance(self.target_modules, list):
            target_modules = self.target_modules

        else:
            target_modules = self.target_modules

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "model_path": model_path,
            }
        )
        if gradient_checkpointing is not UNSET:
            field_dict["gradient_checkpointing"] = gradient_checkpointing
        if is_lora is not UNSET:
            field_dict["is_lora"] = is_lora
        if lora_alpha is not UNSET:
            field_dict["lora_alpha"] = lora_alpha
        if lora_dropout is not UNSET:
            field_dict["lora_dropout"] = lora_dropout
        if lora_path is not UNSET:
            field_dict["lora_path"] = lora_path
        if lora_rank is not UNSET:
            field_dict["lora_rank"] = lora_rank
        if precision is not UNSET:
            field_dict["precision"] = precision
        if target_modules is not UNSET:
            field_dict["target_modules"] = target_modules

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        model_path = d.pop("model_path")

        def _parse_gradient_checkpointing(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        gradient_checkpointing = _parse_gradient_checkpointing(
            d.pop("gradient_checkpointing", UNSET)
        )

        is_lora = d.pop("is_lora", UNSET)

        def _parse_lora_alpha(data: object) -> float | int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | int | None | Unset, data)

        lora_alpha = _parse_lora_alpha(d.pop("lora_alpha", UNSET))

        lora_dropout = d.pop("lora_dropout", UNSET)

        def _parse_lora_path(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        lora_path = _parse_lora_path(d.pop("lora_path", UNSET))

        def _parse_lora_rank(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        lora_rank = _parse_lora_rank(d.pop("lora_rank", UNSET))

        def _parse_precision(data: object) -> ModelSpecPrecisionType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                precision_type_0 = ModelSpecPrecisionType0(data)

                return precision_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ModelSpecPrecisionType0 | None | Unset, data)

        precision = _parse_precision(d.pop("precision", UNSET))

        def _parse_target_modules(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                target_modules_type_0 = cast(list[str], data)

                return target_modules_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        target_modules = _parse_target_modules(d.pop("target_modules", UNSET))

        model_spec = cls(
            model_path=model_path,
            gradient_checkpointing=gradient_checkpointing,
            is_lora=is_lora,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            lora_path=lora_path,
            lora_rank=lora_rank,
            precision=precision,
            target_modules=target_modules,
        )

        return model_spec
