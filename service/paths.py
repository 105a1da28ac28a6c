"""Worker-local paths a spec may name, confined to folders the operator allows."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def outside_roots(value: str, roots: Sequence[Path | str]) -> str | None:
    """Why `value` may not be used (None when it lies under an allowed root).

    `..` parts are refused outright; the rest is compared by real path, so a symlink
    cannot lead out of a root.
    """
    if not value.startswith("/"):
        return "must be an absolute path"
    if any(part == ".." for part in value.split("/")):
        return "may not contain `..`"
    real_roots = [Path(os.path.realpath(root)) for root in roots]
    if not real_roots:
        return "is not allowed: the operator allows no worker-local folders here"
    real = Path(os.path.realpath(value))
    if not any(real.is_relative_to(root) for root in real_roots):
        return f"resolves to {str(real)!r}, outside the allowed roots {[str(r) for r in real_roots]}"
    return None
