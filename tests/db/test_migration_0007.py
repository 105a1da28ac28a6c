"""Migration 0007 (jobs.devices) upgrades a 0006 database that holds jobs, on SQLite and
PostgreSQL: every existing job needs one device; it downgrades again."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine

from db.migrate import alembic_config, upgrade

JOBS = ("job_01jd8x4k2m9q7r5t3v1w0y6z8a", "job_01jd8x4k2m9q7r5t3v1w0y6z8b")


def test_0007_gives_every_existing_job_one_device(empty_engine: Engine):
    config = alembic_config(empty_engine.url.render_as_string(hide_password=False))
    with empty_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
    columns = ("id", "state", "priority", "attempt", "max_attempts", "progress_step",
               "created_at", "updated_at", "project", "kind")
    jobs = sa.table("jobs", *(sa.column(c) for c in columns), sa.column("spec", sa.JSON()),
                    sa.column("ignored_keys", sa.JSON()))
    now = datetime.now(UTC).replace(tzinfo=None)
    spec = {"actor": {"model": {"model_path": "m", "is_lora": True, "lora_rank": 4}}}
    with empty_engine.begin() as connection:
        for job_id, state in zip(JOBS, ("queued", "succeeded"), strict=True):
            connection.execute(jobs.insert().values(
                id=job_id, state=state, priority=0, attempt=0, max_attempts=3, progress_step=0,
                created_at=now, updated_at=now, project="default", kind="training",
                spec=spec, ignored_keys=[]))

    upgrade(empty_engine)

    with empty_engine.connect() as connection:
        rows = connection.execute(text("SELECT id, devices FROM jobs ORDER BY id")).all()
    assert [(r.id, r.devices) for r in rows] == [(JOBS[0], 1), (JOBS[1], 1)]

    with empty_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0006")
    with empty_engine.connect() as connection:
        names = {c["name"] for c in sa.inspect(connection).get_columns("jobs")}
        count = connection.execute(text("SELECT count(*) FROM jobs")).scalar_one()
    assert "devices" not in names and count == 2
