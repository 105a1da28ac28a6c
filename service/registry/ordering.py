"""How the adapter list filters and sorts: by tags (`k:v`, AND-combined) and by a final
metric (`metrics.loss`), with keyset cursors that stay exact across pages."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, case, cast, func, or_
from sqlalchemy.orm import Session

from db import models
from service.errors import InvalidRequest
from service.schemas.registry import METRIC_KEY_PATTERN, TAG_KEY_PATTERN

_TAG_KEY = re.compile(TAG_KEY_PATTERN)
_METRIC_KEY = re.compile(METRIC_KEY_PATTERN)
METRIC_PREFIX = "metrics."


def tag_filters(filters: list[str]) -> list[ColumnElement[bool]]:
    """`k:v` (tag k has value v) or `k` (the adapter has tag k), to be combined with AND."""
    clauses = []
    for item in filters:
        key, colon, value = item.partition(":")
        if not _TAG_KEY.fullmatch(key):
            raise InvalidRequest(f"tag filter {item!r} is not `key:value` or `key` with a valid key", code="invalid_tag")
        extracted = models.Adapter.tags[key].as_string()
        clauses.append(extracted == value if colon else extracted.is_not(None))
    return clauses


def metric_value(session: Session, key: str) -> ColumnElement[Any]:
    """The numeric final metric `key` of an adapter, NULL when absent or not a number."""
    if not _METRIC_KEY.fullmatch(key):
        raise InvalidRequest(f"metric {key!r} is not a valid metric name", code="invalid_order_by")
    if session.get_bind().dialect.name == "postgresql":
        node = models.Adapter.metrics.op("->")(key)
        return case(
            (func.jsonb_typeof(node) == "number",
             cast(models.Adapter.metrics.op("->>")(key), Float)),
            else_=None,
        )
    path = f'$."{key}"'
    return case(
        (func.json_type(models.Adapter.metrics, path).in_(["real", "integer"]),
         func.json_extract(models.Adapter.metrics, path)),
        else_=None,
    )


def parse_order(order_by: str) -> tuple[str | None, bool]:
    """`created_at` (newest first) → (None, _); `metrics.K` → (K, ascending);
    `-metrics.K` → (K, descending)."""
    if order_by in ("created_at", "-created_at"):
        return None, False
    descending = order_by.startswith("-")
    field = order_by.removeprefix("-")
    if not field.startswith(METRIC_PREFIX):
        raise InvalidRequest(
            f"order_by {order_by!r}: use `created_at`, `metrics.<name>` (ascending) or "
            "`-metrics.<name>` (descending)",
            code="invalid_order_by",
        )
    return field.removeprefix(METRIC_PREFIX), not descending


def after_metric_cursor(
    value_expr: ColumnElement[Any], ascending: bool, value: float | None, last_id: str
) -> ColumnElement[bool]:
    """Rows after (value, id) in the order: value (nulls last), then id newest first."""
    if value is None:
        return and_(value_expr.is_(None), models.Adapter.id < last_id)
    beyond = value_expr > value if ascending else value_expr < value
    return or_(
        beyond,
        and_(value_expr == value, models.Adapter.id < last_id),
        value_expr.is_(None),
    )
