"""Migrations upgrade databases that hold data, on SQLite and PostgreSQL, and match the models."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Engine

from db.base import Base
from db.migrate import alembic_config, head_revision, upgrade

CK = "ck_01jd8x4k2m9q7r5t3v1w0y6z8a"
AD = "ad_01jd8x4k2m9q7r5t3v1w0y6z8a"
PARENT = "ad_01jd8x4k2m9q7r5t3v1w0y6z8b"


def migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def add_0001_job(engine: Engine, job_id: str, lora_path: str | None,
                 parent: str | None = None) -> None:
    """A job row as revision 0001 stored it."""
    columns = ("id", "state", "priority", "attempt", "max_attempts", "progress_step",
               "parent_adapter_id", "created_at", "updated_at", "project")
    jobs = sa.table("jobs", *(sa.column(c) for c in columns),
                    sa.column("spec", sa.JSON()), sa.column("ignored_keys", sa.JSON()))
    model: dict[str, Any] = {"model_path": "demo-tiny-llama", "is_lora": True}
    if lora_path is not None:
        model["lora_path"] = lora_path
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as connection:
        connection.execute(jobs.insert().values(
            id=job_id, state="queued", priority=0, spec={"actor": {"model": model}},
            ignored_keys=[], attempt=0, max_attempts=3, progress_step=0,
            parent_adapter_id=parent, created_at=now, updated_at=now, project="default"))


def test_0002_fills_the_lora_source_of_existing_jobs(empty_engine: Engine, tmp_path: Path):
    migrate(empty_engine, "0001")
    local = tmp_path / "adapters" / "bot"
    local.parent.mkdir()
    (tmp_path / "link").symlink_to(local.parent)
    rows = {
        "job_a": (None, None),
        "job_b": (AD, AD),
        "job_c": (f"https://lp.example/adapters/{AD}", AD),
        "job_d": ("bot@prod", AD),
        "job_e": (CK, PARENT),
        "job_f": (f"https://lp.example/jobs/job_x/checkpoints/{CK}", None),
        "job_g": (str(tmp_path / "link" / "bot"), None),
    }
    for job_id, (lora_path, parent) in rows.items():
        add_0001_job(empty_engine, job_id, lora_path, parent)

    upgrade(empty_engine)

    with empty_engine.connect() as connection:
        got = {
            r.id: (r.lora_source_kind, r.parent_adapter_id, r.source_checkpoint_id,
                   r.lora_local_path)
            for r in connection.execute(text(
                "SELECT id, lora_source_kind, parent_adapter_id, source_checkpoint_id, "
                "lora_local_path FROM jobs"))
        }
        revision = MigrationContext.configure(connection).get_current_revision()
    assert revision == head_revision()
    assert got == {
        "job_a": (None, None, None, None),
        "job_b": ("adapter", AD, None, None),
        "job_c": ("adapter", AD, None, None),
        "job_d": ("adapter", AD, None, None),
        "job_e": ("checkpoint", PARENT, CK, None),
        "job_f": ("checkpoint", None, CK, None),
        "job_g": ("local", None, None, str(local.resolve())),
    }


def test_head_matches_the_models_and_downgrades(empty_engine: Engine):
    upgrade(empty_engine)
    with empty_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    migrate(empty_engine, "0001", down=True)
    add_0001_job(empty_engine, "job_a", CK)
    upgrade(empty_engine)
    with empty_engine.connect() as connection:
        kind = connection.execute(text("SELECT source_checkpoint_id FROM jobs")).scalar_one()
    assert kind == CK
