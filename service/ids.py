"""Typed, time-ordered ids: `job_…`, `ad_…`, `ds_…`, `ck_…`, `ls_…` (lease), `wk_…`, `wh_…`
(webhook), `msg_…` (a webhook message)."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
PREFIXES = frozenset({"job", "ad", "ds", "ck", "ls", "wk", "tok", "pj", "wh", "msg"})


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A new id: prefix, 48-bit millisecond time, 80 random bits (sortable by creation time)."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    stamp = int(time.time() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_b32(stamp, 10)}{_b32(rand, 16)}"


def has_prefix(value: str, prefix: str) -> bool:
    """True if `value` looks like an id of that kind."""
    body = value.removeprefix(f"{prefix}_")
    return body != value and len(body) == 26 and all(c in _ALPHABET for c in body)
