"""The PostgreSQL pool of an API process (db/engine.py).

It keeps `LORAPLANE_DATABASE_POOL_SIZE` connections open between bursts: a connection beyond
the pool is closed when it comes back, and opening one is a fork on the database server
(measured: 16 workers finishing 2000 jobs opened 360 connections with a pool of 10, 13 with 24).
It pings a connection before use only after it sat idle, and so replaces one that died idle."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from api.app import create_app
from db.engine import make_engine
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


def _kill_server_side(url: str, pid: int) -> None:
    """End the backend `pid` from a connection of another engine, as a database restart or a
    proxy's idle timeout would."""
    killer = create_engine(url, poolclass=NullPool)
    try:
        with killer.connect() as other:
            assert other.execute(text("SELECT pg_terminate_backend(:pid)"),
                                 {"pid": pid}).scalar()
    finally:
        killer.dispose()


def test_a_connection_that_died_while_idle_is_replaced_before_use(pg_database: str):
    """Idle past `ping_idle_seconds`: pinged at checkout, found dead, replaced; the caller
    sees nothing."""
    engine = make_engine(pg_database, ping_idle_seconds=0.2)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        _kill_server_side(pg_database, pid)
        time.sleep(0.3)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()


def test_a_connection_in_steady_use_is_not_pinged(pg_database: str):
    """Back in the pool for less than `ping_idle_seconds`: handed out without a round trip,
    so a connection killed a moment ago fails its first statement, and the next checkout
    connects again. With a ping on every checkout (SQLAlchemy's `pool_pre_ping`) the first
    statement would have succeeded. (Whether the failure invalidates the whole pool depends
    on how far psycopg had read the server's goodbye: not asserted.)"""
    engine = make_engine(pg_database, ping_idle_seconds=60)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        _kill_server_side(pg_database, pid)
        with pytest.raises(DBAPIError), engine.connect() as conn:
            conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()
