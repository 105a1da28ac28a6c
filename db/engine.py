"""Engines and sessions for SQLite (embedded) and PostgreSQL (at scale)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the URL names (or omits)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername != "postgresql+psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level: SQLAlchemy's "begin" hook below issues BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # One writer at a time, taken up front: no deferred-transaction upgrade deadlocks,
    # and a claim (read + update) is atomic without SKIP LOCKED. Sessions that only read
    # ask for `sqlite_begin="DEFERRED"` and then read in parallel (WAL).
    # The statement goes straight to the driver: this runs for every transaction, and
    # SQLAlchemy's execution path (events, a result object) would double its cost.
    mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    conn.connection.driver_connection.execute(
        "BEGIN DEFERRED" if mode == "DEFERRED" else "BEGIN IMMEDIATE")


# Connections a PostgreSQL pool opens beyond `pool_size` while busy, closed on their return.
MAX_OVERFLOW = 20


def make_engine(url: str, *, pool_size: int = 20) -> Engine:
    """An engine configured for its backend (WAL + busy timeout + FKs on SQLite); on
    PostgreSQL a pool keeping `pool_size` connections (`LORAPLANE_DATABASE_POOL_SIZE`)."""
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=MAX_OVERFLOW)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def reading(engine: Engine) -> Engine:
    """`engine` for transactions that only read (same pool): on SQLite they begin DEFERRED,
    so they neither wait for nor hold the write lock and run in parallel under WAL."""
    return engine.execution_options(sqlite_begin="DEFERRED")
