"""Service settings: one class, read from `LORAPLANE_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the server and its embedded workers."""

    model_config = SettingsConfigDict(env_prefix="LORAPLANE_", extra="ignore")

    data_dir: Path = Field(Path(".loraplane"), description="Root for the SQLite file, artifacts, models.")
    database_url: str = Field("", description="SQLAlchemy URL; default: SQLite under data_dir.")
    database_pool_size: int = Field(
        20, ge=1, le=500,
        description="PostgreSQL connections each API process keeps open (up to 20 more while "
        "busy, closed as they come back). Concurrent requests beyond it open and close a "
        "connection each, a fork on the database server.",
    )
    host: str = "127.0.0.1"
    public_url: str | None = Field(
        None,
        description="Base URL clients reach this service at (e.g. https://loraplane.example); "
        "used in `lora_path` and download URLs; default: the request's base URL.",
    )
    port: int = Field(8000, ge=0, le=65535)
    models_dir: Path | None = Field(None, description="Base models by name; default data_dir/models.")
    artifacts_dir: Path | None = Field(None, description="Blob store root; default data_dir/artifacts.")
    artifacts_url: str | None = Field(
        None,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^?#]*)?$",
        description="`s3://bucket/prefix`: keep blobs in S3-compatible object storage (endpoint "
        "and credentials from the usual AWS_* settings) instead of under artifacts_dir.",
    )
    artifacts_presign_seconds: int = Field(
        0,
        ge=0,
        le=7 * 24 * 3600,
        description="With an S3 store: answer downloads with a redirect to a presigned URL "
        "valid this long; 0 streams them through the API.",
    )
    max_spec_bytes: int = Field(1 << 20, ge=1024, description="Largest accepted job spec body.")
    max_dataset_bytes: int = Field(1 << 30, ge=1, description="Largest accepted dataset upload.")
    max_artifact_bytes: int = Field(64 << 30, ge=1, description="Largest accepted artifact upload.")
    lease_seconds: float = Field(30.0, gt=0, description="How long a claim lasts without heartbeat.")
    max_attempts: int = Field(3, ge=1, description="Claims a job gets before it fails as worker_lost.")
    claim_wait_seconds: float = Field(25.0, ge=0, description="Longest long-poll of an idle worker.")
    queue_poll_seconds: float = Field(0.5, gt=0, description="DB poll fallback while long-polling.")
    checkpoints_keep: int = Field(3, ge=1, description="Checkpoints kept per succeeded job.")
    blob_grace_seconds: float = Field(
        3600.0, gt=0, description="Age after which an unreferenced blob is deleted by the sweep."
    )
    lora_path_roots: list[Path] = Field(
        default_factory=list, description="Worker-local folders a lora_path may point into."
    )
    data_path_roots: list[Path] = Field(
        default_factory=list,
        description="Worker-local folders `data.train_data_paths` may name (none by default: "
        "use uploaded datasets).",
    )
    workers: int = Field(1, ge=0, description="Embedded worker processes `serve` starts.")
    api_processes: int = Field(
        1, ge=1, le=64, description="API processes `serve` runs on its one port (the kernel "
        "spreads connections among them; each holds a database pool of its own)."
    )
    admin_token: str | None = Field(
        None, description="Register this admin token at start (else one is made on first start "
        "and written to data_dir/admin.token, mode 0600)."
    )
    worker_token: str | None = Field(
        None, description="Register this worker token at start (else the embedded workers get "
        "one of their own, data_dir/worker.token)."
    )

    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Where webhooks may point: comma-separated host names (`*.example.com`: "
        "its subdomains) and CIDRs (`10.1.0.0/16`, `127.0.0.1/32`); empty: nowhere. A listed "
        "name that resolves to a private, loopback or link-local address is refused unless a "
        "listed CIDR holds that address.",
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=60,
                                           description="Timeout of one webhook POST.")
    webhook_retry_base_seconds: float = Field(
        5.0, gt=0, description="First retry delay of a webhook; doubled per attempt, jittered.")
    webhook_retry_max_seconds: float = Field(
        3600.0, gt=0, description="Longest delay between two attempts of a webhook.")
    webhook_max_age_seconds: float = Field(
        3 * 24 * 3600.0, gt=0,
        description="A webhook message not delivered this long after its event is given up.")
    webhook_poll_seconds: float = Field(
        1.0, gt=0, description="How often the delivery loop looks for due webhook messages.")

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        from service.webhooks.targets import AllowList  # a bad entry fails at start-up

        AllowList.parse(value if isinstance(value, list) else [])
        return value

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().absolute()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'loraplane.db'}"
        if self.models_dir is None:
            self.models_dir = self.data_dir / "models"
        if self.artifacts_dir is None:
            self.artifacts_dir = self.data_dir / "artifacts"
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
