"""The registry's API schemas: files, adapters, aliases, checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.common import MAX_BIGINT, MAX_INT

SHA256 = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the bytes, lowercase hex.")

class FileRef(BaseModel):
    """A file of an adapter or checkpoint: relative path, content hash, size."""

    model_config = ConfigDict(from_attributes=True)

    name: str = Field(min_length=1, max_length=255, description="Relative path, `/`-separated.")
    sha256: str = SHA256
    size: int = Field(ge=0, le=MAX_BIGINT)


class AdapterResult(BaseModel):
    """What a finished training run hands the registry (its files are already stored)."""

    kind: Literal["lora", "full"]
    files: list[FileRef] = Field(min_length=1)
    rank: int | None = Field(
        None, ge=1, le=MAX_INT, description="LoRA rank r; read from adapter_config.json if null."
    )
    alpha: float | None = Field(None, gt=0, allow_inf_nan=False)
    target_modules: list[str] = Field(
        default_factory=list, description="Module names actually wrapped."
    )
    base_fingerprint: str | None = Field(None, max_length=64)
    metrics: dict[str, Any] | None = None

class LineageEntry(BaseModel):
    id: str
    name: str
    version: int

class Adapter(BaseModel):
    """A registered adapter (or full fine-tuned model) as clients see it."""

    id: str
    name: str
    version: int = Field(description="Monotonic per name, from 1.")
    kind: Literal["lora", "full"]
    base_model: str = Field(description="The `model_path` it was trained on.")
    base_fingerprint: str | None
    rank: int | None
    alpha: float | None
    target_modules: list[str]
    files: list[FileRef]
    job_id: str | None
    parent_adapter_id: str | None
    lineage: list[LineageEntry] = Field(description="Ancestors, nearest first, back to the first.")
    metrics: dict[str, Any] | None
    aliases: list[str]
    created_at: datetime
    lora_path: str = Field(description="Pass as `actor.model.lora_path` to continue from it.")
    download_url: str = Field(description="The PEFT folder as one tar stream.")

class Alias(BaseModel):
    name: str
    alias: str
    adapter_id: str
    version: int
    updated_at: datetime

class Checkpoint(BaseModel):
    """A checkpoint a job saved; LoRA ones can be continued from with their `lora_path`."""

    id: str
    job_id: str
    step: int
    attempt: int
    size: int
    kind: Literal["lora", "full"]
    files: list[FileRef]
    lora_path: str | None = Field(
        description="Pass as `actor.model.lora_path` to continue from it; null when it holds "
        "no PEFT adapter (full fine-tuning)."
    )
    created_at: datetime


class AliasUpdate(BaseModel):
    adapter_id: str = Field(min_length=1, max_length=40, description="An adapter of that name.")
