"""Migration 0006 (adapters: serving verdicts) upgrades a 0005 database that holds adapters,
on SQLite and PostgreSQL, and downgrades again; the API fills the verdicts in
(tests/api/test_serving_verdicts.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine

from db.migrate import alembic_config, upgrade

ADAPTER = "ad_01jd8x4k2m9q7r5t3v1w0y6z8a"
NEW = {"serving", "vllm_servable", "peft_servable"}


def test_0006_adds_verdicts_that_existing_adapters_lack(empty_engine: Engine):
    config = alembic_config(empty_engine.url.render_as_string(hide_password=False))
    with empty_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
    columns = ("id", "name", "version", "kind", "base_model", "rank", "created_at", "project")
    adapters = sa.table(
        "adapters", *(sa.column(c) for c in columns), sa.column("target_modules", sa.JSON())
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    with empty_engine.begin() as connection:
        connection.execute(
            adapters.insert().values(
                id=ADAPTER,
                name="bot",
                version=1,
                kind="lora",
                base_model="m",
                rank=4,
                created_at=now,
                project="default",
                target_modules=["q_proj"],
            )
        )

    upgrade(empty_engine)

    with empty_engine.connect() as connection:
        row = connection.execute(
            text("SELECT id, serving, vllm_servable, peft_servable FROM adapters")
        ).one()
        indexes = {i["name"] for i in sa.inspect(connection).get_indexes("adapters")}
    assert tuple(row) == (ADAPTER, None, None, None)
    assert {"ix_adapters_vllm_servable", "ix_adapters_peft_servable"} <= indexes

    with empty_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    with empty_engine.connect() as connection:
        names = {c["name"] for c in sa.inspect(connection).get_columns("adapters")}
        count = connection.execute(text("SELECT count(*) FROM adapters")).scalar_one()
    assert not names & NEW and count == 1
