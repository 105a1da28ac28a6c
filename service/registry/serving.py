"""Serving verdicts: whether vLLM and peft load an adapter, by the rules each applies when it
reads the folder, decided from its adapter_config.json and its tensor names alone.

The vLLM rules are those of vLLM 0.32's LoRA loader (`PEFTHelper.validate_legal` and
`_validate_features`, `LoRAConfig.max_lora_rank`, the weight-name parser of `vllm/lora/utils.py`).
The peft rule: every peft from 0.11.1 (RLinf's pin) to the newest builds its `LoraConfig` from
the file's fields, and a peft that lacks one of them refuses the whole file.

Computed once, at registration (`check_adapter_files`), and stored with the adapter; rows
registered before verdicts existed get theirs from `backfill_verdicts` when the API starts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db import models
from service.artifacts import ArtifactStore
from service.errors import ServiceError
from service.registry.files import ADAPTER_CONFIG, ADAPTER_WEIGHTS, read_json_blob
from service.registry.tensors import read_tensor_index
from service.schemas import FileRef
from service.spec import JobSpec

log = logging.getLogger(__name__)

ENGINES = ("vllm", "peft")

# vLLM's `--max-lora-rank` choices (`MaxLoRARanks`); an adapter's largest rank (r, or a
# rank_pattern value) must not exceed the value the server runs with; lower ranks are padded.
VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
VLLM_DEFAULT_MAX_LORA_RANK = 16
VLLM_REQUIRED_FIELDS = ("r", "lora_alpha", "target_modules")
# modules_to_save vLLM accepts: one classification head, never an LM's own modules.
VLLM_FULL_MODULES = ("classifier", "score")
# init_lora_weights strings vLLM accepts: inits that leave the base weights as they are.
VLLM_INITS = ("gaussian", "eva", "orthogonal", "mica", "lora_ga")
VLLM_UNSUPPORTED_FEATURES = {
    "use_dora": "DoRA (use_dora) is not supported by vLLM",
    "lora_bias": "LoRA bias (lora_bias) is not supported by vLLM",
    "alora_invocation_tokens": "Activated LoRA (alora_invocation_tokens) is not supported by vLLM",
    "layer_replication": "layer_replication is not supported by vLLM",
    "use_bdlora": "block-diagonal LoRA (use_bdlora) is not supported by vLLM",
    "use_qalora": "QALoRA (use_qalora) is not supported by vLLM",
}
# Tensors vLLM skips: the base embedding and head weights some tools save alongside.
_VLLM_SKIPPED_SUFFIXES = (".embed_tokens.base_layer.weight", ".lm_head.base_layer.weight")

# The fields of peft 0.11.1's LoraConfig (with PeftConfig's). worker/trainer/adapter_config.py
# keeps the same list (the worker cannot import this package; a test holds them equal).
PEFT_0_11_LORA_FIELDS = frozenset({
    "alpha_pattern", "auto_mapping", "base_model_name_or_path", "bias", "fan_in_fan_out",
    "inference_mode", "init_lora_weights", "layer_replication", "layers_pattern",
    "layers_to_transform", "loftq_config", "lora_alpha", "lora_dropout", "megatron_config",
    "megatron_core", "modules_to_save", "peft_type", "r", "rank_pattern", "revision",
    "target_modules", "task_type", "use_dora", "use_rslora",
})  # fmt: skip
# The fields later peft added (up to 0.21), at their defaults: such a field at its default
# changes nothing, so deleting it from the file makes it load in peft 0.11 too.
PEFT_NEWER_DEFAULTS: dict[str, Any] = {
    "peft_version": None, "exclude_modules": None, "trainable_token_indices": None,
    "eva_config": None, "corda_config": None, "lora_ga_config": None, "velora_config": None,
    "alora_invocation_tokens": None, "use_qalora": False, "qalora_group_size": 16,
    "monteclora_config": None, "lora_bias": False, "target_parameters": None, "use_bdlora": None,
    "arrow_config": None, "kasa_config": None, "ensure_weight_tying": False,
    "runtime_config": {"ephemeral_gpu_offload": False},
}  # fmt: skip


def _blank(value: Any) -> bool:
    return value is None or value is False or (isinstance(value, (dict, list)) and not value)


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _largest_rank(config: Mapping[str, Any]) -> int | None:
    ranks = [config.get("r"), *(config.get("rank_pattern") or {}).values()]
    ints = [r for r in ranks if isinstance(r, int) and not isinstance(r, bool)]
    return max(ints) if ints else None


def _vllm_tensor_problem(name: str, full_modules: Iterable[str]) -> bool:
    """Whether vLLM's weight-name parser refuses `name` ("… is unsupported LoRA weight")."""
    if name.endswith(_VLLM_SKIPPED_SUFFIXES):
        return False
    parts = name.split(".")
    if len(parts) >= 3 and parts[-2] in ("lora_A", "lora_B") and parts[-1] == "weight":
        return False
    if parts[-1] in ("lora_embedding_A", "lora_embedding_B"):
        return False
    return not (
        len(parts) >= 2
        and parts[-1] in ("weight", "bias")
        and parts[-2] in VLLM_FULL_MODULES
        and parts[-2] in full_modules
    )


def vllm_verdict(config: Mapping[str, Any], tensor_names: Iterable[str]) -> dict[str, Any]:
    """`{"ok", "reasons", "notes", "max_lora_rank"}`: whether vLLM loads the adapter, why not,
    and the smallest `--max-lora-rank` it needs (null when no value holds it)."""
    reasons: list[str] = []
    notes: list[str] = []
    missing = [key for key in VLLM_REQUIRED_FIELDS if key not in config]
    if missing:
        reasons.append(
            f"{ADAPTER_CONFIG} has no {', '.join(missing)}: vLLM requires "
            f"{', '.join(VLLM_REQUIRED_FIELDS)} to be present"
        )
    rank = _largest_rank(config)
    max_lora_rank = next((v for v in VLLM_MAX_LORA_RANKS if rank is not None and v >= rank), None)
    if rank is not None and max_lora_rank is None:
        reasons.append(
            f"rank {rank} (r or rank_pattern) is above {VLLM_MAX_LORA_RANKS[-1]}, the largest "
            "--max-lora-rank vLLM accepts"
        )
    elif rank is not None and max_lora_rank != rank:
        notes.append(
            f"rank {rank} is not one of vLLM's --max-lora-rank values "
            f"{list(VLLM_MAX_LORA_RANKS)}: serve it with --max-lora-rank {max_lora_rank} or more "
            f"(its weights are padded to that rank)"
        )
    if max_lora_rank is not None and max_lora_rank > VLLM_DEFAULT_MAX_LORA_RANK:
        notes.append(
            f"needs --max-lora-rank {max_lora_rank} or more (vLLM's default is "
            f"{VLLM_DEFAULT_MAX_LORA_RANK})"
        )
    bias = config.get("bias", "none")
    if bias != "none":
        reasons.append(f'bias is {_show(bias)}: vLLM loads only adapters with bias "none"')
    for key, why in VLLM_UNSUPPORTED_FEATURES.items():
        if not _blank(config.get(key)):
            reasons.append(f"{why} ({key} is {_show(config[key])})")
    init = config.get("init_lora_weights", True)
    if isinstance(init, str) and init.lower() not in VLLM_INITS:
        reasons.append(
            f"init_lora_weights is {init!r}: that init changes the base model's weights when "
            "peft loads the adapter, and vLLM serves the unchanged base (convert the adapter "
            "with peft's path_initial_model_for_weight_conversion)"
        )
    saved = config.get("modules_to_save") or []
    saved = [saved] if isinstance(saved, str) else list(saved)
    unsupported = [m for m in saved if m not in VLLM_FULL_MODULES]
    if unsupported:
        reasons.append(
            f"modules_to_save lists {unsupported}: vLLM loads no whole modules besides one "
            f"classification head {list(VLLM_FULL_MODULES)}"
        )
    elif len(saved) > 1:
        reasons.append(f"modules_to_save lists {saved}: vLLM loads one classification head")
    refused = sorted(n for n in tensor_names if _vllm_tensor_problem(n, saved))
    if refused:
        more = f" and {len(refused) - 3} more" if len(refused) > 3 else ""
        reasons.append(
            f"{ADAPTER_WEIGHTS} holds tensors vLLM does not read as LoRA weights: "
            f"{refused[:3]}{more} (it takes only `….lora_A.weight`, `….lora_B.weight` and "
            "`….lora_embedding_A|B`)"
        )
    if config.get("use_rslora") is True:
        notes.append("use_rslora: vLLM scales by lora_alpha / sqrt(r), as peft does")
    return {"ok": not reasons, "reasons": reasons, "notes": notes, "max_lora_rank": max_lora_rank}


def peft_verdict(config: Mapping[str, Any]) -> dict[str, Any]:
    """`{"ok", "reasons", "notes"}`: whether every peft from 0.11.1 (RLinf's pin) to the newest
    loads the config; each field an older peft lacks is a reason."""
    reasons: list[str] = []
    for key in sorted(set(config) - PEFT_0_11_LORA_FIELDS):
        value = config[key]
        if key == "peft_version":
            reasons.append(
                f"peft_version ({_show(value)}) records which peft wrote the file, a field peft "
                "0.11.1 (RLinf's pin) does not know, so its LoraConfig refuses the file; "
                f"deleting it from {ADAPTER_CONFIG} changes nothing for newer peft"
            )
        elif key in PEFT_NEWER_DEFAULTS and (
            value == PEFT_NEWER_DEFAULTS[key]
            or (_blank(value) and _blank(PEFT_NEWER_DEFAULTS[key]))
        ):
            reasons.append(
                f"{key} ({_show(value)}, its default) is a field peft 0.11.1 (RLinf's pin) does "
                f"not know, so its LoraConfig refuses the file; deleting {key} from "
                f"{ADAPTER_CONFIG} changes nothing for newer peft"
            )
        elif key in PEFT_NEWER_DEFAULTS:
            reasons.append(
                f"{key} is {_show(value)}: a feature peft 0.11.1 (RLinf's pin) does not have; "
                "it refuses the file, a newer peft is needed"
            )
        else:
            reasons.append(
                f"{key} is not a LoraConfig field of peft 0.11.1 to 0.21: older peft refuses "
                "the file, newer ones ignore the field"
            )
    return {"ok": not reasons, "reasons": reasons, "notes": []}


def serving_verdicts(config: Mapping[str, Any], tensor_names: Iterable[str]) -> dict[str, Any]:
    """Both verdicts of a LoRA adapter, as stored and shown (`Adapter.serving`)."""
    return {"vllm": vllm_verdict(config, list(tensor_names)), "peft": peft_verdict(config)}


def apply_verdicts(row: models.Adapter, serving: dict[str, Any] | None) -> None:
    """Store the verdicts on the row, with the flags `?servable=` filters on."""
    row.serving = serving
    row.vllm_servable = None if serving is None else bool(serving["vllm"]["ok"])
    row.peft_servable = None if serving is None else bool(serving["peft"]["ok"])


def backfill_verdicts(session: Session, store: ArtifactStore, *, batch: int = 200) -> int:
    """Compute the verdicts of LoRA adapters registered before verdicts existed (their files
    are read from the store); returns how many it filled. Flushes only."""
    filled, after = 0, ""
    while True:
        rows = session.scalars(
            select(models.Adapter)
            .where(models.Adapter.kind == "lora", models.Adapter.vllm_servable.is_(None))
            .where(models.Adapter.id > after)
            .order_by(models.Adapter.id)
            .limit(batch)
        ).all()
        if not rows:
            return filled
        for row in rows:
            after = row.id
            files = {
                f.name: FileRef(name=f.name, sha256=f.sha256, size=f.size)
                for f in session.scalars(
                    select(models.AdapterFile).where(models.AdapterFile.adapter_id == row.id)
                )
            }
            try:
                config = read_json_blob(store, files[ADAPTER_CONFIG])
                tensors = read_tensor_index(store, files[ADAPTER_WEIGHTS])
            except (KeyError, OSError, ServiceError) as exc:
                log.warning("no serving verdicts for adapter %s: %s", row.id, exc)
                continue
            apply_verdicts(row, serving_verdicts(config, tensors))
            filled += 1
        session.flush()


def submit_warnings(spec: JobSpec) -> list[str]:
    """What about a training spec makes its adapter one vLLM refuses under some settings:
    said in the answer to POST /jobs, never an error (peft loads any rank)."""
    model = spec.actor.model
    rank = model.lora_rank
    if not model.is_lora or rank is None:
        return []
    fits = next((v for v in VLLM_MAX_LORA_RANKS if v >= rank), None)
    if fits is None:
        why = (
            f"actor.model.lora_rank {rank} is above {VLLM_MAX_LORA_RANKS[-1]}, the largest "
            "--max-lora-rank vLLM accepts: vLLM will refuse the adapter this job trains"
        )
        return [why]
    if fits != rank:
        why = (
            f"actor.model.lora_rank {rank} is not one of vLLM's --max-lora-rank values "
            f"{list(VLLM_MAX_LORA_RANKS)}: vLLM refuses the adapter unless started with "
            f"--max-lora-rank {fits} or more, and pads its weights to that rank"
        )
        return [why]
    return []


def continued_adapter_warnings(session: Session, adapter_id: str) -> list[str]:
    """A job continuing a registered adapter keeps its config: what vLLM refuses in it."""
    row = session.get(models.Adapter, adapter_id)
    if row is None or row.vllm_servable is not False:
        return []
    reasons = "; ".join((row.serving or {}).get("vllm", {}).get("reasons", []))
    return [
        (
            f"actor.model.lora_path continues adapter {row.id} ({row.name}:{row.version}), which "
            f"vLLM refuses, and the new version keeps its config: {reasons}"
        )
    ]
