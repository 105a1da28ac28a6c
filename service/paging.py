"""Keyset pages over time-ordered ids (`job_…`, `ad_…`, …), newest first.

The cursor is the last id of a page, so a page never repeats a row and rows added while a
client pages through land before its cursor instead of shifting what it has not read yet.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from service.errors import InvalidRequest
from service.schemas.common import MAX_BIGINT, MIN_BIGINT


def newest_first(session: Session, stmt: Select[Any], id_column: InstrumentedAttribute[str], *,
                 limit: int, cursor: str | None) -> tuple[list[Any], str | None]:
    """One page of `stmt`'s rows and the cursor of the next page (None at the end)."""
    stmt = stmt.order_by(id_column.desc()).limit(limit + 1)
    if cursor:
        after = decode_cursor(cursor)
        if not isinstance(after, str):
            raise InvalidRequest("cursor is not one this service issued", code="invalid_cursor")
        stmt = stmt.where(id_column < after)
    rows = list(session.scalars(stmt))
    if len(rows) > limit:
        return rows[:limit], encode_cursor(rows[limit - 1].id)
    return rows, None


def encode_cursor(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    """Decode an opaque cursor; a tampered one is a 422, never a 500."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise InvalidRequest("cursor is not one this service issued", code="invalid_cursor") from None
    # No cursor is a boolean, nor an integer no column holds (both would fail in SQL).
    if isinstance(value, bool) or (
        isinstance(value, int) and not MIN_BIGINT <= value <= MAX_BIGINT
    ):
        raise InvalidRequest("cursor is not one this service issued", code="invalid_cursor")
    return value
