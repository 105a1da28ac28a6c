"""Reading the SDK's typed spec: fields the server left out are `Unset`, enums carry `.value`."""

from __future__ import annotations

import enum
from typing import Any

from loraplane_client.types import Unset


def value(field: Any, default: Any = None) -> Any:
    """The plain value of a spec field: `default` when unset or None, an enum's value."""
    if field is None or isinstance(field, Unset):
        return default
    if isinstance(field, enum.Enum):
        return field.value
    return field
