"""What people say about an adapter: a description and tags (string → string)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from service.errors import InvalidRequest
from service.registry.adapters import adapter_row, to_adapters
from service.schemas import Adapter, AdapterPatch
from service.schemas.registry import (
    MAX_DESCRIPTION,
    MAX_TAG_VALUE,
    MAX_TAGS,
    TAG_KEY_PATTERN,
)

_TAG_KEY = re.compile(TAG_KEY_PATTERN)


def validate_tags(tags: dict[str, Any]) -> dict[str, str]:
    """Tags as stored: at most MAX_TAGS, keys of the tag grammar, values short printable strings."""
    if len(tags) > MAX_TAGS:
        raise InvalidRequest(f"an adapter has at most {MAX_TAGS} tags; got {len(tags)}", code="invalid_tag")
    for key, value in tags.items():
        if not isinstance(key, str) or not _TAG_KEY.fullmatch(key):
            raise InvalidRequest(
                f"tag key {key!r} is not valid: 1 to 64 of letters, digits, `._/-`, starting "
                "with a letter or digit", code="invalid_tag")
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE or not value.isprintable():
            raise InvalidRequest(f"tag {key!r}: the value must be a printable string of at most "
                       f"{MAX_TAG_VALUE} characters", code="invalid_tag")
    return dict(sorted(tags.items()))


def validate_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InvalidRequest(f"a description is at most {MAX_DESCRIPTION} characters",
                   code="invalid_description")
    return description


def update_metadata(
    session: Session, adapter_id: str, patch: AdapterPatch, *, base_url: str | None = None
) -> Adapter:
    """Apply a JSON merge patch (RFC 7396) to an adapter's description and tags: a field left
    out is unchanged, `null` clears it, and `tags` merges key by key (`null` drops a key)."""
    row = adapter_row(session, adapter_id, lock="update")
    given = patch.model_fields_set
    if "description" in given:
        row.description = validate_description(patch.description)
    if "tags" in given:
        if patch.tags is None:
            merged: dict[str, Any] = {}
        else:
            merged = dict(row.tags or {})
            for key, value in patch.tags.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
        row.tags = validate_tags(merged)
    session.flush()
    return to_adapters(session, [row], base_url)[0]
