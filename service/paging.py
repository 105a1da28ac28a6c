"""Keyset pages over time-ordered ids (`job_…`, `ad_…`, …), newest first.

The cursor is the last id of a page, so a page never repeats a row and rows added while a
client pages through land before its cursor instead of shifting what it has not read yet.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from service.domain import decode_cursor, encode_cursor
from service.errors import InvalidRequest


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
