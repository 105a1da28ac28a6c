"""Tables. The schema changes only through migrations in db/migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, JSONType, UTCDateTime, utcnow

# SQLite only autoincrements an INTEGER PRIMARY KEY.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
DEFAULT_PROJECT = "default"


class ProjectScoped:
    """Rows that belong to a project; a user's session sees only its project's (db/scoping.py)."""

    project: Mapped[str] = mapped_column(String(100), default=DEFAULT_PROJECT, index=True)


class ApiToken(Base):
    """A bearer token; only the sha256 of its secret is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    project: Mapped[str] = mapped_column(String(100), default=DEFAULT_PROJECT)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Job(ProjectScoped, Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    ignored_keys: Mapped[list[str]] = mapped_column(JSONType, default=list)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str | None] = mapped_column(String(100))
    lease_id: Mapped[str | None] = mapped_column(String(40))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # What `actor.model.lora_path` resolved to at submit (service/lora_path.py), so later
    # steps read columns instead of parsing the spec again. `parent_adapter_id` is the
    # adapter the job's line descends from (for a checkpoint: its job's parent).
    lora_source_kind: Mapped[str | None] = mapped_column(String(16))
    parent_adapter_id: Mapped[str | None] = mapped_column(String(40))
    source_checkpoint_id: Mapped[str | None] = mapped_column(String(40), index=True)
    lora_local_path: Mapped[str | None] = mapped_column(Text)
    adapter_id: Mapped[str | None] = mapped_column(String(40))
    # `training`, `evaluation` or `sample` (service/schemas/tasks.py); the two others keep
    # what was asked in `task` and what the worker measured or generated in `result`.
    kind: Mapped[str] = mapped_column(String(16), default="training", server_default="training")
    task: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_jobs_claim", "state", "priority", "created_at"),
        Index("ix_jobs_lease", "state", "lease_expires_at"),
        Index("ix_jobs_kind_parent", "kind", "parent_adapter_id"),
    )


class JobEvent(Base):
    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_job_events_job", "job_id", "id"),)


class Dataset(ProjectScoped, Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(Integer)
    keys: Mapped[list[str]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Adapter(ProjectScoped, Base):
    __tablename__ = "adapters"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))
    base_model: Mapped[str] = mapped_column(Text)
    base_fingerprint: Mapped[str | None] = mapped_column(String(64))
    rank: Mapped[int | None] = mapped_column(Integer)
    alpha: Mapped[float | None] = mapped_column(Float)
    target_modules: Mapped[list[str]] = mapped_column(JSONType, default=list)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    parent_adapter_id: Mapped[str | None] = mapped_column(ForeignKey("adapters.id"))
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # `job`: a worker trained it; `import`: uploaded (POST /adapters). Kept by export/import.
    source: Mapped[str] = mapped_column(String(16), default="job", server_default="job")
    # sha256 over the sorted (file name, file sha256) pairs (service/registry/files.py:
    # content_digest): re-importing the same bytes under a name finds the version holding them.
    digest: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict, server_default="{}")

    __table_args__ = (
        UniqueConstraint("project", "name", "version"),
        Index("ix_adapters_name_digest", "project", "name", "digest"),
    )


class AdapterName(ProjectScoped, Base):
    """One row per adapter name; its counter makes versions monotonic under concurrency."""

    __tablename__ = "adapter_names"

    project: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_version: Mapped[int] = mapped_column(Integer, default=0)


class AdapterFile(Base):
    __tablename__ = "adapter_files"

    adapter_id: Mapped[str] = mapped_column(
        ForeignKey("adapters.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)


class Alias(ProjectScoped, Base):
    __tablename__ = "aliases"

    project: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    adapter_id: Mapped[str] = mapped_column(ForeignKey("adapters.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Checkpoint(ProjectScoped, Base):
    __tablename__ = "checkpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    pruned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_checkpoints_job", "job_id", "step"),)
