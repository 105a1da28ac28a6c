"""What every schema shares: pages of a list, the integer bounds columns hold, JSON-safe values."""

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
