"""Migration 0003 (adapters: source, digest, description, tags) upgrades a 0002 database that
holds adapters, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine

from db.migrate import alembic_config, upgrade
from service.registry.files import content_digest
from service.schemas import FileRef

A, B = "ad_01jd8x4k2m9q7r5t3v1w0y6z8a", "ad_01jd8x4k2m9q7r5t3v1w0y6z8b"


def test_0003_fills_source_and_digest_of_existing_adapters(empty_engine: Engine):
    config = alembic_config(empty_engine.url.render_as_string(hide_password=False))
    with empty_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    columns = ("id", "name", "version", "kind", "base_model", "created_at", "project",
               "parent_adapter_id")
    adapters = sa.table("adapters", *(sa.column(c) for c in columns),
                        sa.column("target_modules", sa.JSON()))
    files = sa.table("adapter_files", *(sa.column(c) for c in ("adapter_id", "name", "sha256",
                                                               "size")))
    now = datetime.now(UTC).replace(tzinfo=None)
    refs = [FileRef(name="adapter_model.safetensors", sha256="b" * 64, size=20),
            FileRef(name="adapter_config.json", sha256="a" * 64, size=10)]
    with empty_engine.begin() as connection:
        for adapter_id, version, parent in ((A, 1, None), (B, 2, A)):
            connection.execute(adapters.insert().values(
                id=adapter_id, name="bot", version=version, kind="lora", base_model="m",
                created_at=now, project="default", parent_adapter_id=parent, target_modules=[]))
        connection.execute(files.insert(), [{"adapter_id": A, **r.model_dump()} for r in refs])

    upgrade(empty_engine)

    with empty_engine.connect() as connection:
        rows = {r.id: r for r in connection.execute(text(
            "SELECT id, source, digest, description, tags, parent_adapter_id FROM adapters"))}
    assert rows[A].source == rows[B].source == "job"
    assert rows[A].digest == content_digest(refs)
    assert rows[B].digest is None  # no files: nothing to digest
    assert rows[A].description is None
    assert rows[A].tags in ({}, "{}") and rows[B].tags in ({}, "{}")
    assert rows[B].parent_adapter_id == A
