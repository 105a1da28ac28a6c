"""The files of a run: the PEFT folder's names, locating and fingerprinting base models; no
torch import."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from worker.trainer.errors import UserError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def resolve_model_dir(model_path: str, models_dir: Path) -> Path:
    """An absolute model folder, or a bare name under `models_dir`; it must hold config.json."""
    path = Path(model_path)
    if path.is_absolute():
        candidates = [path]
    elif model_path in {".", ".."} or len(path.parts) != 1 or "\\" in model_path:
        raise UserError(
            f"model_path {model_path!r} must be an absolute path or a bare model name "
            f"(looked up in {Path(models_dir).absolute()})",
            code="model_not_found",
        )
    else:
        candidates = [Path(models_dir).absolute() / model_path]
    for candidate in candidates:
        if candidate.is_dir() and (candidate / "config.json").is_file():
            return candidate
    looked = ", ".join(
        f"{c}" + (" (folder without config.json)" if c.is_dir() else " (no such folder)")
        for c in candidates
    )
    raise UserError(f"model {model_path!r} not found; looked in: {looked}", code="model_not_found")


def base_fingerprint(model_dir: Path) -> str:
    """sha256 hex of the model's config.json re-serialised as canonical JSON (sorted keys)."""
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
