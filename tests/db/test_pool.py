"""An API process keeps `LORAPLANE_DATABASE_POOL_SIZE` PostgreSQL connections open between
bursts: a connection beyond the pool is closed when it comes back, and opening one is a fork on
the database server (measured: 16 workers finishing 2000 jobs opened 360 connections with a
pool of 10, 13 with 24)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import event, text

from api.app import create_app
from service.settings import Settings


def _burst(engine, n: int) -> None:
    """`n` connections checked out at the same moment, each running a statement."""
    barrier = threading.Barrier(n)

    def one() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            barrier.wait(timeout=30)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)


@pytest.mark.parametrize(("pool_size", "kept"), [(20, 16), (10, 10)])
def test_a_burst_within_the_pool_opens_no_connection_the_second_time(
        pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool_size: int,
        kept: int):
    monkeypatch.setenv("LORAPLANE_DATABASE_POOL_SIZE", str(pool_size))
    settings = Settings(data_dir=tmp_path, database_url=pg_database)
    engine = create_app(settings, migrate=False).state.loraplane.engine
    opened = []
    event.listen(engine, "connect", lambda *_: opened.append(1))
    try:
        _burst(engine, 16)
        assert len(opened) == 16
        assert engine.pool.checkedin() == kept  # the rest closed on their way back
        _burst(engine, 16)
        # Within the pool: none opened again; past it, one per connection it could not keep.
        assert len(opened) == 16 + (16 - kept)
    finally:
        engine.dispose()


def test_the_pool_size_is_checked_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LORAPLANE_DATABASE_POOL_SIZE", "0")
    with pytest.raises(ValueError, match="database_pool_size"):
        Settings(data_dir=tmp_path)
