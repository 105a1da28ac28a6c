"""What every schema shares: pages of a list, the integer bounds columns hold, JSON-safe
values, and rows read into schemas."""

from __future__ import annotations

import math
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

MIN_BIGINT, MAX_BIGINT = -(2**63), 2**63 - 1  # BIGINT columns (sizes, event ids)

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


MAX_INT = 2**31 - 1  # INTEGER columns (steps, ranks) on PostgreSQL


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float (NaN, ±Infinity: a skipped fp16 step's grad norm)
    replaced by None: PostgreSQL's JSON columns refuse them, and JSON cannot carry them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    return value


M = TypeVar("M", bound=BaseModel)


class _RowView:
    """A row's attributes, with the fields it does not hold supplied beside it."""

    def __init__(self, row: object, extra: dict[str, Any]):
        self._row, self._extra = row, extra

    def __getattr__(self, name: str) -> Any:
        return self._extra[name] if name in self._extra else getattr(self._row, name)


def from_row(model: type[M], row: object, **computed: Any) -> M:
    """`model` validated from an ORM row's attributes, plus the fields the row lacks."""
    return model.model_validate(_RowView(row, computed) if computed else row, from_attributes=True)
