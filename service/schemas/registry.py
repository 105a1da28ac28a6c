"""The registry's API schemas: files, adapters, aliases, checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.common import MAX_BIGINT, MAX_INT
from service.schemas.tasks import EvaluationSummary

SHA256 = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the bytes, lowercase hex.")
# Tags: keys of this grammar (no `:`, so `tag=k:v` filters split unambiguously), short values.
TAG_KEY_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}"
METRIC_KEY_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,63}"
MAX_TAGS, MAX_TAG_VALUE, MAX_DESCRIPTION = 50, 256, 4096

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


class PeftVerdict(BaseModel):
    """Whether peft loads the adapter: every peft from 0.11.1 (RLinf's pin) to the newest."""

    ok: bool
    reasons: list[str] = Field(description="Why not, one sentence per field at fault.")
    notes: list[str] = Field(default_factory=list, description="What to know when it is ok.")


class VllmVerdict(PeftVerdict):
    """Whether vLLM's LoRA loader takes the adapter, by its rules (rank, DoRA, bias,
    modules_to_save, tensor names, ...)."""

    max_lora_rank: int | None = Field(
        description="The smallest `--max-lora-rank` value that holds the adapter's rank; null "
        "when no value does (above 512)."
    )


class ServingVerdicts(BaseModel):
    """Computed at registration from adapter_config.json and the tensor names."""

    vllm: VllmVerdict
    peft: PeftVerdict

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
    source: Literal["job", "import"] = Field(
        description="`job`: trained by a worker; `import`: uploaded with POST /adapters."
    )
    digest: str | None = Field(
        description="sha256 over `name\\0sha256\\n` of the files sorted by name: the same bytes "
        "under the same name are the same version."
    )
    description: str | None
    tags: dict[str, str]
    serving: ServingVerdicts | None = Field(
        None,
        description="Whether vLLM and peft load it (LoRA adapters); null for a full model.",
    )
    lora_path: str = Field(description="Pass as `actor.model.lora_path` to continue from it.")
    download_url: str = Field(description="The PEFT folder as one tar stream.")
    evaluations: list[EvaluationSummary] = Field(
        default_factory=list,
        description="Evaluations of this adapter (POST /evaluations), newest first (50 at most).")

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


class AdapterPatch(BaseModel):
    """A JSON merge patch (RFC 7396) of an adapter's metadata: a field left out is unchanged,
    `null` clears it; `tags` merges key by key, a `null` value drops that key."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    tags: dict[str, str | None] | None = Field(
        None,
        max_length=MAX_TAGS,
        description=f"Keys: 1 to 64 of letters, digits, `._/-`; values: up to {MAX_TAG_VALUE} "
        f"printable characters; at most {MAX_TAGS} tags per adapter.",
    )


REGISTRY_FORMAT = "loraplane-registry/1"


class ExportedAdapter(BaseModel):
    """One adapter in a registry archive's manifest."""

    id: str = Field(pattern=r"^ad_[0-9a-z]{1,37}$")
    name: str = Field(min_length=1, max_length=100)
    version: int = Field(ge=1, le=MAX_INT)
    kind: Literal["lora", "full"]
    base_model: str = Field(max_length=4096)
    base_fingerprint: str | None = Field(None, max_length=64)
    rank: int | None = Field(None, ge=1, le=MAX_INT)
    alpha: float | None = Field(None, gt=0, allow_inf_nan=False)
    target_modules: list[str] = Field(default_factory=list)
    parent_adapter_id: str | None = Field(None, max_length=40)
    job_id: str | None = Field(None, description="The job that trained it, at the source "
                               "installation (jobs are not exported; null after an import).")
    metrics: dict[str, Any] | None = None
    source: Literal["job", "import"] = "job"
    digest: str | None = None
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    tags: dict[str, str] = Field(default_factory=dict)
    created_at: datetime
    files: list[FileRef] = Field(min_length=1)


class ExportedAlias(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    alias: str = Field(min_length=1, max_length=100)
    adapter_id: str = Field(max_length=40)


class RegistryManifest(BaseModel):
    """`manifest.json`, the first member of a registry archive; `blobs/<sha256>` follow."""

    format: Literal["loraplane-registry/1"] = REGISTRY_FORMAT
    project: str
    exported_at: datetime
    adapters: list[ExportedAdapter]
    aliases: list[ExportedAlias]


class RegistryImport(BaseModel):
    """What `POST /import` did."""

    adapters_created: list[str] = Field(description="Ids of the adapters added.")
    adapters_present: list[str] = Field(
        description="Ids already here with the same name, version and files (left as they are)."
    )
    aliases_set: int
    blobs_stored: int = Field(description="Blobs this import added to the store.")
    blobs_present: int = Field(description="Blobs the store already held (not duplicated).")
