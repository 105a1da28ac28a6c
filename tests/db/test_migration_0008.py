"""Migration 0008 (the claim index in the claim's order) on SQLite and PostgreSQL: after it,
a claim reads the next job off `ix_jobs_claim` instead of sorting the queue; it downgrades."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection, Engine

from db.migrate import alembic_config, upgrade
from service.queue import _CLAIM

QUEUED = 400


def _claim_plan(connection: Connection) -> str:
    """The database's plan for the claim statement the queue runs (not run: explained)."""
    postgres = connection.dialect.name == "postgresql"
    compiled = _CLAIM[postgres].compile(dialect=connection.dialect)
    now = datetime.now(UTC)
    params = compiled.construct_params({"offered_devices": 1, "claiming_worker": "w",
                                        "new_lease": "ls", "new_expiry": now, "claimed_at": now})
    if postgres:
        rows = connection.exec_driver_sql(f"EXPLAIN {compiled}", params).all()
        return "\n".join(r[0] for r in rows)
    positional = tuple(params[name] for name in compiled.positiontup)
    rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional).all()
    return "\n".join(str(r[-1]) for r in rows)


def _sorts(plan: str) -> bool:
    """PostgreSQL's `Sort` node, SQLite's `USE TEMP B-TREE FOR ORDER BY`."""
    return "Sort" in plan or "B-TREE FOR ORDER BY" in plan


def _index_columns(connection: Connection) -> list[str]:
    (index,) = [i for i in sa.inspect(connection).get_indexes("jobs") if i["name"] == "ix_jobs_claim"]
    return index["column_names"]


def test_0008_makes_the_claim_read_the_index_instead_of_sorting_the_queue(empty_engine: Engine):
    config = alembic_config(empty_engine.url.render_as_string(hide_password=False))
    with empty_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
    columns = ("id", "state", "priority", "attempt", "max_attempts", "progress_step",
               "created_at", "updated_at", "project", "kind", "devices")
    jobs = sa.table("jobs", *(sa.column(c) for c in columns), sa.column("spec", sa.JSON()),
                    sa.column("ignored_keys", sa.JSON()))
    start = datetime.now(UTC).replace(tzinfo=None)
    spec = {"actor": {"model": {"model_path": "m", "is_lora": True, "lora_rank": 4}}}
    with empty_engine.begin() as connection:
        connection.execute(jobs.insert(), [
            {"id": f"job_{n:026d}", "state": "queued", "priority": n % 3, "attempt": 0,
             "max_attempts": 3, "progress_step": 0, "created_at": start + timedelta(seconds=n),
             "updated_at": start, "project": "default", "kind": "training", "devices": 1,
             "spec": spec, "ignored_keys": []}
            for n in range(QUEUED)])
        connection.exec_driver_sql("ANALYZE")
        before = _claim_plan(connection)
    assert _sorts(before), before  # the old index: the queue sorted on each claim

    upgrade(empty_engine)

    with empty_engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
        after = _claim_plan(connection)
        assert _index_columns(connection) == ["state", "priority", "created_at", "id"]
    assert "ix_jobs_claim" in after and not _sorts(after), after

    with empty_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0007")
    with empty_engine.connect() as connection:
        assert _index_columns(connection) == ["state", "priority", "created_at"]
