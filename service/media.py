"""Media types as the service compares them."""

from __future__ import annotations


def normalise_media_type(content_type: str | None) -> str:
    """A Content-Type header's media type, lower-cased, parameters dropped; "" for none."""
    return (content_type or "").split(";")[0].strip().lower()
