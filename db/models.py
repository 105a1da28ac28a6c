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
    # Devices the job's actor needs (`cluster.component_placement.actor`, parsed at submit);
    # NULL: `all`, whatever the claiming worker offers. A worker claims only jobs that fit.
    devices: Mapped[int | None] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # The claim's order (service/queue.py), direction for direction: the next job is the
        # first entry under `queued`, not a sort of the whole queue on every claim.
        Index("ix_jobs_claim", "state", priority.desc(), "created_at", "id"),
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
    # Serving verdicts (service/registry/serving.py) and the flags `?servable=` filters on;
    # none for a full model, nor for a LoRA row of before 0006 until the API backfills it.
    serving: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    vllm_servable: Mapped[bool | None] = mapped_column(Boolean)
    peft_servable: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (
        UniqueConstraint("project", "name", "version"),
        Index("ix_adapters_name_digest", "project", "name", "digest"),
        Index("ix_adapters_vllm_servable", "project", "vllm_servable"),
        Index("ix_adapters_peft_servable", "project", "peft_servable"),
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


class Webhook(ProjectScoped, Base):
    """A subscription: events of its project POSTed to `url`, signed with `secret`."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSONType)
    description: Mapped[str | None] = mapped_column(Text)
    # `whsec_<base64>`, kept as given to its owner: signing needs the key itself.
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(ProjectScoped, Base):
    """The outbox: one message for one subscription, written in the transaction of the change
    that caused it; its id is the `webhook-id` of every attempt to deliver it."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)  # the exact JSON every attempt sends
    # pending (next_attempt_at: when it is due; a claim pushes it on, as a lease),
    # delivered, or failed (given up LORAPLANE_WEBHOOK_MAX_AGE_SECONDS after retry_from:
    # its event, or the last redelivery asked for).
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retry_from: Mapped[datetime] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
    )


class WebhookAttempt(Base):
    """One POST of a delivery: when, how long, the status code or the error."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[float] = mapped_column(Float)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
