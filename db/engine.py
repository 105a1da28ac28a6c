"""Engines and sessions for SQLite (embedded) and PostgreSQL (at scale)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
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
# A pooled connection back in the pool longer than this is pinged before it is handed out.
PING_IDLE_SECONDS = 5.0


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a pooled connection before use only if it sat idle `idle_seconds` or more: what
    closes connections behind the pool's back (a database restart, an idle timeout in a
    proxy or firewall) finds idle ones, and a connection in steady use is not worth a round
    trip per checkout (SQLAlchemy's `pool_pre_ping` pings every one: a `GET /adapters/{id}`,
    one checkout, then cost a round trip more than its three statements). A dead connection
    found by the ping invalidates the pool, as `pool_pre_ping` does, and the checkout takes a
    new one; one in steady use when the database went away fails its request (503, which
    workers send again: worker/client.py), and the pool is invalidated then."""
    dialect = engine.dialect

    @event.listens_for(engine.pool, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.pop("returned_at", None)
        if returned is None or time.monotonic() - returned < idle_seconds:
            return  # just opened, or in steady use
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as err:
            if dialect.is_disconnect(err, dbapi_connection, None):
                raise exc.InvalidatePoolError() from err
            raise


def make_engine(url: str, *, pool_size: int = 20,
                ping_idle_seconds: float = PING_IDLE_SECONDS) -> Engine:
    """An engine configured for its backend (WAL + busy timeout + FKs on SQLite); on
    PostgreSQL a pool keeping `pool_size` connections (`LORAPLANE_DATABASE_POOL_SIZE`), each
    pinged before use after `ping_idle_seconds` idle."""
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=MAX_OVERFLOW)
    _ping_when_idle(engine, ping_idle_seconds)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def reading(engine: Engine) -> Engine:
    """`engine` for transactions that only read (same pool): on SQLite they begin DEFERRED,
    so they neither wait for nor hold the write lock and run in parallel under WAL."""
    return engine.execution_options(sqlite_begin="DEFERRED")
