"""The one grammar for adapter names and aliases, and the one for project names."""

from __future__ import annotations

import re

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
"""An adapter name or alias: a letter or digit, then up to 99 of letters, digits, `._-`."""

NAME_RE = re.compile(NAME_PATTERN)

PROJECT_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
"""A project: lower-case letters and digits, then up to 99 of those and `._-`."""


def is_valid_name(value: str) -> bool:
    """Whether `value` is a whole adapter name or alias."""
    return NAME_RE.fullmatch(value) is not None
