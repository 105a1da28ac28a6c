"""Files offered to the registry: safe names, formats sniffed, the PEFT pair, config reading."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import Any

from service.artifacts import ArtifactStore
from service.errors import InvalidArtifact
from service.schemas import MAX_INT, FileRef

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PEFT_FILES = frozenset({ADAPTER_CONFIG, ADAPTER_WEIGHTS})
# Formats that are (or may hide) pickles: never accepted, whatever the bytes say.
PICKLE_SUFFIXES = frozenset(
    {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".dill", ".npy", ".npz"}
)
MAX_CONFIG_BYTES = 1 << 20


def validate_file_name(name: str) -> str:
    """A plain relative `/`-separated path: no `..`, `.` or empty parts, not absolute."""
    if not isinstance(name, str) or not name or len(name) > 255:
        raise InvalidArtifact(f"file name {name!r} must be 1 to 255 characters", code="unsafe_file_name")
    if "\\" in name or any(not c.isprintable() for c in name):
        raise InvalidArtifact(
            f"file name {name!r} contains a backslash or a control character", code="unsafe_file_name"
        )
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise InvalidArtifact(
            f"file name {name!r} is absolute; only relative names are accepted", code="unsafe_file_name"
        )
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise InvalidArtifact(f"file name {name!r} has an empty, `.` or `..` part", code="unsafe_file_name")
    if PurePosixPath(name).suffix.lower() in PICKLE_SUFFIXES:
        raise InvalidArtifact(
            f"file {name!r} has a pickle-based format; only safetensors and plain text/JSON "
            "files are accepted",
            code="pickle_refused",
        )
    return name

def _sniff(store: ArtifactStore, ref: FileRef) -> None:
    """Refuse bytes that are not what the name says: safetensors headers, no pickles/zips."""
    with store.open(ref.sha256) as f:
        head = f.read(9)
    # Pickles and torch.save zips are named as such even behind another file name.
    said = " is not a safetensors file: it" if ref.name.endswith(".safetensors") else ""
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise InvalidArtifact(
            f"file {ref.name!r}{said} is a pickle; pickles are never accepted",
            code="pickle_refused",
        )
    if head[:4] == b"PK\x03\x04":
        raise InvalidArtifact(
            f"file {ref.name!r}{said} is a zip archive (torch.save?); not accepted",
            code="pickle_refused",
        )
    if ref.name.endswith(".safetensors"):
        header_len = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
        if header_len < 2 or 8 + header_len > ref.size or head[8:9] != b"{":
            raise InvalidArtifact(
                f"file {ref.name!r} is not a safetensors file", code="invalid_safetensors"
            )


def check_files(store: ArtifactStore, files: Sequence[FileRef]) -> list[FileRef]:
    """Validate names and formats, and that every blob is stored with the announced size."""
    if not files:
        raise InvalidArtifact("no files given")
    seen: set[str] = set()
    for ref in files:
        validate_file_name(ref.name)
        if ref.name in seen:
            raise InvalidArtifact(f"file {ref.name!r} is listed twice")
        seen.add(ref.name)
    missing = [ref.name for ref in files if not store.exists(ref.sha256)]
    if missing:
        raise InvalidArtifact(
            f"files not uploaded yet (no blob with their sha256): {', '.join(missing)}",
            code="blob_missing",
        )
    for ref in files:
        stored = store.size(ref.sha256)
        if stored != ref.size:
            raise InvalidArtifact(
                f"file {ref.name!r} is announced with {ref.size} bytes; its blob has {stored}"
            )
        _sniff(store, ref)
    return sorted(files, key=lambda ref: ref.name)

def peft_pair(files: Iterable[FileRef]) -> dict[str, FileRef] | None:
    """The `adapter_config.json` + `adapter_model.safetensors` of one folder, by base name.

    When several folders hold both, the shallowest (then alphabetically first) wins.
    """
    folders: dict[str, dict[str, FileRef]] = {}
    for ref in files:
        folder, _, base = ref.name.rpartition("/")
        if base in PEFT_FILES:
            folders.setdefault(folder, {})[base] = ref
    complete = [f for f, pair in folders.items() if len(pair) == 2]
    if not complete:
        return None
    best = min(complete, key=lambda f: (f.count("/") + bool(f), f))
    return folders[best]


def read_json_blob(store: ArtifactStore, ref: FileRef) -> dict[str, Any]:
    """A small JSON object file (a config) from the store; 422 if it is anything else."""
    if ref.size > MAX_CONFIG_BYTES:
        raise InvalidArtifact(
            f"{ref.name} is {ref.size} bytes; too large for a config file", code="invalid_adapter_config"
        )
    with store.open(ref.sha256) as f:
        raw = f.read(MAX_CONFIG_BYTES + 1)
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidArtifact(f"{ref.name} is not valid UTF-8 JSON", code="invalid_adapter_config") from None
    if not isinstance(value, dict):
        raise InvalidArtifact(f"{ref.name} is not a JSON object", code="invalid_adapter_config")
    return value


def config_rank_of(config: dict[str, Any], where: str = ADAPTER_CONFIG) -> int:
    """The LoRA rank `r` an adapter_config.json must give (peft would silently assume 8)."""
    rank = config.get("r")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= MAX_INT:
        raise InvalidArtifact(
            f"{where} must give the LoRA rank `r` as a positive integer; got {rank!r}",
            code="invalid_adapter_config",
        )
    return rank


def content_digest(files: Iterable[FileRef]) -> str:
    """sha256 over "name\\0sha256\\n" of the files sorted by name: equal bytes, equal digest."""
    lines = "".join(f"{ref.name}\0{ref.sha256}\n" for ref in sorted(files, key=lambda r: r.name))
    return hashlib.sha256(lines.encode()).hexdigest()
