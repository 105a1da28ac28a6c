"""What is inside an adapter's files: the adapter_config.json rules, the safetensors index,
and every LoRA tensor's shape against the config's rank.

Only the safetensors header (a JSON index) is read, through the store's interface; tensor
data is never loaded, and nothing here can run code from a file.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.artifacts import ArtifactStore
from service.errors import InvalidArtifact
from service.registry.files import ADAPTER_CONFIG, config_rank_of
from service.schemas import MAX_INT, FileRef

MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
# `…q_proj.lora_A.weight` (peft's saved form), `…lora_A.default.weight` (adapter name kept),
# `…embed_tokens.lora_embedding_A` (an embedding's LoRA parameters have no `.weight`).
_LORA_KEY = re.compile(
    r"^(?P<module>.+?)\.(?P<part>lora_(?:embedding_)?[AB])(?:\.(?P<rest>[^.]+(?:\.weight)?))?$"
)
_PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str
    shape: tuple[int, ...]


def _config_error(message: str) -> InvalidArtifact:
    return InvalidArtifact(f"{ADAPTER_CONFIG}: {message}", code="invalid_adapter_config")


def check_adapter_config(config: Mapping[str, Any]) -> int:
    """The rules an adapter_config.json must follow; returns its rank `r`."""
    peft_type = config.get("peft_type", "LORA")
    if peft_type != "LORA":
        raise _config_error(f"peft_type must be \"LORA\"; got {peft_type!r}")
    rank = config_rank_of(config)
    alpha = config.get("lora_alpha")
    if alpha is not None and (
        isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < math.inf
    ):
        raise _config_error(f"lora_alpha must be a positive number; got {alpha!r}")
    targets = config.get("target_modules")
    if targets is not None and not (
        isinstance(targets, str)
        or (isinstance(targets, list) and targets and all(isinstance(t, str) for t in targets))
    ):
        raise _config_error(f"target_modules must be a string or a list of strings; got {targets!r}")
    for key in ("rank_pattern", "alpha_pattern"):
        pattern = config.get(key) or {}
        if not isinstance(pattern, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v > 0
            for k, v in pattern.items()
        ):
            raise _config_error(f"{key} must map module names to positive numbers; got {pattern!r}")
    for k, v in (config.get("rank_pattern") or {}).items():
        if not isinstance(v, int) or v > MAX_INT:
            raise _config_error(f"rank_pattern[{k!r}] must be a positive integer; got {v!r}")
    return rank


def read_tensor_index(store: ArtifactStore, ref: FileRef) -> dict[str, Tensor]:
    """The tensors a safetensors file declares, its header checked against the file's size:
    known dtypes, shapes of non-negative integers, data spans that tile the data exactly."""

    def bad(why: str) -> InvalidArtifact:
        return InvalidArtifact(f"{ref.name} is not a valid safetensors file: {why}",
                               code="invalid_safetensors")

    with store.open(ref.sha256) as f:
        head = f.read(8)
        header_len = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 2 <= header_len <= MAX_HEADER_BYTES or 8 + header_len > ref.size:
            raise bad(f"header length {header_len} does not fit a file of {ref.size} bytes")
        raw = f.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad("the header is not UTF-8 JSON") from None
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise bad("__metadata__ must map strings to strings")
    data_size = ref.size - 8 - header_len
    tensors: dict[str, Tensor] = {}
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if not isinstance(info, dict) or info.get("dtype") not in DTYPE_BYTES:
            raise bad(f"tensor {name!r} has no known dtype")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise bad(f"tensor {name!r} has shape {shape!r}")
        if not (
            isinstance(offsets, list) and len(offsets) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= data_size
        ):
            raise bad(f"tensor {name!r} has data offsets {offsets!r} outside {data_size} bytes")
        if offsets[1] - offsets[0] != math.prod(shape) * DTYPE_BYTES[info["dtype"]]:
            raise bad(f"tensor {name!r} ({info['dtype']} {shape}) spans {offsets}")
        tensors[name] = Tensor(name, info["dtype"], tuple(shape))
        spans.append((offsets[0], offsets[1], name))
    end = 0
    for start, stop, name in sorted(spans):
        if start != end:
            raise bad(f"tensor {name!r} starts at byte {start}, not {end} (gap or overlap)")
        end = stop
    if end != data_size:
        raise bad(f"the tensors hold {end} bytes; the file carries {data_size}")
    return tensors


def _module_rank(module: str, rank: int, rank_pattern: Mapping[str, int]) -> int:
    """The rank peft gives a module: the first `rank_pattern` key it ends with, else `r`."""
    name = module.removeprefix(_PEFT_PREFIX)
    for key, value in rank_pattern.items():
        if re.match(rf"(.*\.)?({key})$", name):
            return value
    return rank


def check_lora_tensors(tensors: Mapping[str, Tensor], config: Mapping[str, Any]) -> int:
    """Every LoRA tensor's shape agrees with the config's rank (A is [r, in], B is [out, r];
    an embedding's A is [r, vocab], B [dim, r]) and every A has its B; returns how many
    LoRA modules the file holds."""
    rank = config_rank_of(config)
    pattern = {k: int(v) for k, v in (config.get("rank_pattern") or {}).items()}
    parts: dict[str, set[str]] = {}
    for tensor in tensors.values():
        m = _LORA_KEY.match(tensor.name)
        if m is None or (m["rest"] is not None and not m["rest"].endswith("weight")):
            continue  # not a LoRA weight (a bias, a module saved whole)
        module, part = m["module"], m["part"]
        expected = _module_rank(module, rank, pattern)
        rank_dim = 0 if part.endswith("A") else 1
        shape = tensor.shape
        if len(shape) < 2 or shape[rank_dim] != expected:
            side = "[r, in_features]" if rank_dim == 0 else "[out_features, r]"
            raise InvalidArtifact(
                f"tensor {tensor.name!r} has shape {list(shape)}; with r={expected} "
                f"({ADAPTER_CONFIG}) a {part} weight is {side}",
                code="tensor_shape_mismatch",
            )
        parts.setdefault(module, set()).add(part.replace("embedding_", ""))
    for module, found in sorted(parts.items()):
        if found != {"lora_A", "lora_B"}:
            missing = ({"lora_A", "lora_B"} - found).pop()
            raise InvalidArtifact(f"module {module!r} has no {missing} weight",
                                  code="tensor_shape_mismatch")
    return len(parts)
