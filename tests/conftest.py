"""One suite, two engines: every DB-backed test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.deps import AppState
from db.base import Base
from db.engine import make_engine
from db.migrate import upgrade
from service.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "LORAPLANE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated to head, dropped at the end."""
    name = f"loraplane_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on each engine in turn."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'loraplane.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url
    url = request.getfixturevalue("pg_database")
    _truncate(url)
    return url


@pytest.fixture
def settings(db_url: str, artifacts_url: str | None, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url, lease_seconds=30,
                    artifacts_url=artifacts_url)


@pytest.fixture
def artifacts_url() -> str | None:
    """Where the app keeps blobs: None, the local store. Suites that must hold on object
    storage too import the fixture of tests/s3.py, parametrised by store."""
    return None


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app, started, with a client that sends the bootstrap admin token."""
    from api.app import create_app

    with TestClient(create_app(settings)) as test_client:
        authenticate_as_admin(test_client, settings)
        yield test_client


def authenticate_as_admin(test_client: TestClient, settings: Settings) -> None:
    token = (settings.data_dir / "admin.token").read_text().strip()
    test_client.headers["Authorization"] = f"Bearer {token}"


@pytest.fixture
def state(client: TestClient) -> AppState:
    """The running app's state: its sessions, artifact store and settings."""
    return client.app.state.loraplane
