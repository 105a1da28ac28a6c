from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.mixed_precision_spec_buffer_dtype_type_0 import MixedPrecisionSpecBufferDtypeType0
from ..models.mixed_precision_spec_param_dtype_type_0 import MixedPrecisionSpecParamDtypeType0
from ..models.mixed_precision_spec_reduce_dtype_type_0 import MixedPrecisionSpecReduceDtypeType0
from ..types import UNSET, Unset

T = TypeVar("T", bound="MixedPrecisionSpec")


@_attrs_define
class MixedPrecisionSpec:
    """`actor.fsdp_config.mixed_precision`: the dtypes of parameters, gradients and buffers.

    Attributes:
        buffer_dtype (MixedPrecisionSpecBufferDtypeType0 | None | Unset): dtype floating-point buffers (e.g. rotary
            frequencies) are cast to.
        param_dtype (MixedPrecisionSpecParamDtypeType0 | None | Unset): dtype the frozen base weights are held in (LoRA)
            or computed in (full fine-tuning, under autocast over fp32 master weights); wins over actor.model.precision.
        reduce_dtype (MixedPrecisionSpecReduceDtypeType0 | None | Unset): dtype of the gradient reduction across
            devices; on one device gradients accumulate in fp32 whatever it says.
    """

    buffer_dtype: MixedPrecisionSpecBufferDtypeType0 | None | Unset = UNSET
    param_dtype: MixedPrecisionSpecParamDtypeType0 | None | Unset = UNSET
    reduce_dtype: MixedPrecisionSpecReduceDtypeType0 | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        buffer_dtype: None | str | Unset
        if isinstance(self.buffer_dtype, Unset):
            buffer_dtype = UNSET
        elif isinstance(self.buffer_dtype, MixedPrecisionSpecBufferDtypeType0):
            buffer_dtype = self.buffer_dtype.value
        else:
            buffer_dtype = self.buffer_dtype

        param_dtype: None | str | Unset
        if isinstance(self.param_dtype, Unset):
            param_dtype = UNSET
        elif isinstance(self.param_dtype, MixedPrecisionSpecParamDtypeType0):
            param_dtype = self.param_dtype.value
        else:
            param_dtype = self.param_dtype

        reduce_dtype: None | str | Unset
        if isinstance(self.reduce_dtype, Unset):
            reduce_dtype = UNSET
        elif isinstance(self.reduce_dtype, MixedPrecisionSpecReduceDtypeType0):
            reduce_dtype = self.reduce_dtype.value
        else:
            reduce_dtype = self.reduce_dtype

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if buffer_dtype is not UNSET:
            field_dict["buffer_dtype"] = buffer_dtype
        if param_dtype is not UNSET:
            field_dict["param_dtype"] = param_dtype
        if reduce_dtype is not UNSET:
            field_dict["reduce_dtype"] = reduce_dtype

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)

        def _parse_buffer_dtype(data: object) -> MixedPrecisionSpecBufferDtypeType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                buffer_dtype_type_0 = MixedPrecisionSpecBufferDtypeType0(data)

                return buffer_dtype_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(MixedPrecisionSpecBufferDtypeType0 | None | Unset, data)

        buffer_dtype = _parse_buffer_dtype(d.pop("buffer_dtype", UNSET))

        def _parse_param_dtype(data: object) -> MixedPrecisionSpecParamDtypeType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                param_dtype_type_0 = MixedPrecisionSpecParamDtypeType0(data)

                return param_dtype_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(MixedPrecisionSpecParamDtypeType0 | None | Unset, data)

        param_dtype = _parse_param_dtype(d.pop("param_dtype", UNSET))

        def _parse_reduce_dtype(data: object) -> MixedPrecisionSpecReduceDtypeType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                reduce_dtype_type_0 = MixedPrecisionSpecReduceDtypeType0(data)

                return reduce_dtype_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(MixedPrecisionSpecReduceDtypeType0 | None | Unset, data)

        reduce_dtype = _parse_reduce_dtype(d.pop("reduce_dtype", UNSET))

        mixed_precision_spec = cls(
            buffer_dtype=buffer_dtype,
            param_dtype=param_dtype,
            reduce_dtype=reduce_dtype,
        )

        return mixed_precision_spec
