"""The adapter registry: registration, reads, aliases, checkpoints, deletion and blob GC.

One module per concern: `schemas` (what clients see), `urls`, `files` (name and format
checks, the PEFT pair), `job_output` (what a job's spec says about its adapter),
`adapters` (rows, reads, deletion), `register`, `aliases`, `checkpoints`, `blobs`
(references and garbage collection). Import from those; the names below are re-exported
for callers that still write `registry.<name>`.

Functions take a `session` and only flush; the caller owns the transaction.
"""

from service.registry.adapters import (
    MAX_LINEAGE,
    adapter_file,
    adapter_files,
    adapter_row,
    delete_adapter,
    get_adapter,
    latest_version,
    list_adapters,
)
from service.registry.aliases import LATEST, delete_alias, get_alias, set_alias, validate_alias
from service.registry.blobs import collect_garbage, referenced_blobs, sweep_blobs
from service.registry.checkpoints import (
    checkpoint_file,
    checkpoint_row,
    get_checkpoint,
    job_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    prune_checkpoints,
    record_checkpoint,
)
from service.registry.files import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    MAX_CONFIG_BYTES,
    PEFT_FILES,
    PICKLE_SUFFIXES,
    check_files,
    config_rank_of,
    peft_pair,
    validate_file_name,
)
from service.registry.job_output import HOLDING_STATES, adapter_name_for, job_kind, model_spec
from service.registry.register import register_adapter
from service.registry.schemas import (
    Adapter,
    AdapterResult,
    Alias,
    Checkpoint,
    FileRef,
    LineageEntry,
)
from service.registry.urls import adapter_archive_url, adapter_lora_path, checkpoint_lora_path

__all__ = [
    "ADAPTER_CONFIG", "ADAPTER_WEIGHTS", "HOLDING_STATES", "LATEST", "MAX_CONFIG_BYTES",
    "MAX_LINEAGE", "PEFT_FILES", "PICKLE_SUFFIXES", "Adapter", "AdapterResult", "Alias",
    "Checkpoint", "FileRef", "LineageEntry", "adapter_archive_url", "adapter_file",
    "adapter_files", "adapter_lora_path", "adapter_name_for", "adapter_row", "check_files",
    "checkpoint_file", "checkpoint_lora_path", "checkpoint_row", "collect_garbage",
    "config_rank_of", "delete_adapter", "delete_alias", "get_adapter", "get_alias",
    "get_checkpoint", "job_checkpoint", "job_kind", "latest_checkpoint", "latest_version",
    "list_adapters", "list_checkpoints", "model_spec", "peft_pair", "prune_checkpoints",
    "record_checkpoint", "referenced_blobs", "register_adapter", "set_alias", "sweep_blobs",
    "validate_alias", "validate_file_name",
]
