"""adapter_config.json that every peft from 0.11 (RLinf's pin) to the newest loads.

peft writes every field its `LoraConfig` has; an older peft's `LoraConfig(**config)` raises
`TypeError` on a field it does not know (0.11.1 on `alora_invocation_tokens`, for one). A field
that older peft lacks is left out when it holds its default value, so leaving it out changes
nothing for a newer peft either; one set to something else is a feature the adapter uses and
is kept (an older peft cannot load such an adapter, and its serving verdict says so).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

# The fields of peft 0.11.1's LoraConfig (with PeftConfig's): what every peft from 0.11 knows.
PEFT_0_11_LORA_FIELDS = frozenset({
    "alpha_pattern", "auto_mapping", "base_model_name_or_path", "bias", "fan_in_fan_out",
    "inference_mode", "init_lora_weights", "layer_replication", "layers_pattern",
    "layers_to_transform", "loftq_config", "lora_alpha", "lora_dropout", "megatron_config",
    "megatron_core", "modules_to_save", "peft_type", "r", "rank_pattern", "revision",
    "target_modules", "task_type", "use_dora", "use_rslora",
})  # fmt: skip
# Provenance, not a setting: which peft wrote the file (newer peft only warns without it).
_PROVENANCE_FIELDS = frozenset({"peft_version"})

# `org/name` as the Hugging Face Hub spells a repository id (no path, no scheme).
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")


def _blank(value: Any) -> bool:
    return value is None or value is False or (isinstance(value, (dict, list)) and not value)


def _is_default(value: Any, default: Any) -> bool:
    return value == default or (_blank(value) and _blank(default))


def portable_adapter_config(config: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """`config` without the fields peft 0.11 lacks that hold their default (`defaults`: the
    installed peft's `LoraConfig().to_dict()`), and without provenance fields."""
    return {
        key: value
        for key, value in config.items()
        if key in PEFT_0_11_LORA_FIELDS
        or (key not in _PROVENANCE_FIELDS and not _is_default(value, defaults.get(key)))
    }


def base_model_reference(model_dir: Path, registry_name: str) -> str:
    """What `base_model_name_or_path` says: the base model's own `_name_or_path` from its
    config.json when it is a Hub id (`org/name`), which peft, transformers and vLLM can
    resolve; else the name the job gave it (`model_path`)."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return registry_name
    own = config.get("_name_or_path")
    if isinstance(own, str) and _HUB_ID.fullmatch(own):
        return own
    return registry_name
