"""Migration 0005 (webhooks, the outbox, attempts) upgrades a 0004 database that holds a job,
on SQLite and PostgreSQL: the new tables take a subscription, a message and an attempt, and
a subscription's deletion takes its messages with it; downgrading removes only them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine

from db.migrate import alembic_config

JOB = "job_01jd8x4k2m9q7r5t3v1w0y6z8a"
TABLES = {"webhooks", "webhook_deliveries", "webhook_attempts"}


def test_0005_adds_the_webhook_tables_and_removes_them_again(empty_engine: Engine):
    config = alembic_config(empty_engine.url.render_as_string(hide_password=False))

    def migrate(revision: str, *, down: bool = False) -> None:
        with empty_engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)

    migrate("0004")
    now = datetime.now(UTC).replace(tzinfo=None)
    with empty_engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO jobs (id, state, priority, spec, ignored_keys, attempt, max_attempts, "
            "progress_step, created_at, updated_at, project, kind) VALUES (:id, 'queued', 0, "
            "'{}', '[]', 0, 3, 0, :now, :now, 'default', 'training')"), {"id": JOB, "now": now})

    migrate("0005")
    hooks = sa.table("webhooks", *(sa.column(c) for c in (
        "id", "url", "description", "secret", "created_at", "project")),
        sa.column("events", sa.JSON()))
    deliveries = sa.table("webhook_deliveries", *(sa.column(c) for c in (
        "id", "webhook_id", "event_type", "body", "state", "attempts", "next_attempt_at",
        "retry_from", "created_at", "project")))
    attempts = sa.table("webhook_attempts", *(sa.column(c) for c in (
        "delivery_id", "attempt", "started_at", "duration_ms", "status_code")))
    with empty_engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.execute(hooks.insert().values(
            id="wh_1", url="http://127.0.0.1:9/", events=["job.failed"], description=None,
            secret="whsec_x", created_at=now, project="default"))
        connection.execute(deliveries.insert().values(
            id="msg_1", webhook_id="wh_1", event_type="job.failed", body="{}", state="pending",
            attempts=1, next_attempt_at=now, retry_from=now, created_at=now, project="default"))
        connection.execute(attempts.insert().values(
            delivery_id="msg_1", attempt=1, started_at=now, duration_ms=1.5, status_code=500))
    with empty_engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.execute(text("DELETE FROM webhooks WHERE id = 'wh_1'"))
        left = [connection.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("webhook_deliveries", "webhook_attempts")]
    assert left == [0, 0]

    migrate("0004", down=True)
    with empty_engine.connect() as connection:
        names = set(sa.inspect(connection).get_table_names())
        jobs = connection.execute(text("SELECT id FROM jobs")).scalars().all()
    assert not names & TABLES and jobs == [JOB]
