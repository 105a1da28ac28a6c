"""Helpers shared by the benchmark scripts: throw-away databases, auth headers, percentiles."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.live import LiveServer  # noqa: E402

# The local PostgreSQL the test suite uses (trust auth); a throw-away database per run.
PG_ADMIN = os.environ.get("LORAPLANE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
LEASE_HEADER = "X-Loraplane-Lease"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(int(round(q * (len(ordered) - 1))), len(ordered) - 1)]


def _token(server: LiveServer, role: str) -> str | None:
    """`server.<role>_token` (auth-aware LiveServer), else the file `serve` writes, else None."""
    token = getattr(server, f"{role}_token", None)
    if token:
        return token
    path = Path(server.data_dir) / f"{role}.token"
    if not path.is_file():
        return None
    return path.read_text().strip() or None


def admin_token(server: LiveServer) -> str | None:
    """The admin token (None while the service runs without auth)."""
    return _token(server, "admin")


def worker_token(server: LiveServer) -> str | None:
    """A worker-role token (None while the service runs without auth)."""
    return _token(server, "worker")


def client(server: LiveServer, **kwargs) -> httpx.Client:
    """`server.client()`, authenticated as admin whether or not LiveServer does it itself."""
    http = server.client(**kwargs)
    token = admin_token(server)
    if token and "authorization" not in http.headers:
        http.headers["Authorization"] = f"Bearer {token}"
    return http


def worker_headers(server: LiveServer, lease: str | None = None) -> dict[str, str]:
    """Headers of a worker-protocol call: the worker token (once auth is in) and the lease."""
    headers: dict[str, str] = {}
    token = worker_token(server)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if lease:
        headers[LEASE_HEADER] = lease
    return headers


@contextlib.contextmanager
def database(engine: str, tmp: Path) -> Iterator[str]:
    """A fresh database URL: a SQLite file under `tmp`, or a PostgreSQL database dropped after."""
    if engine == "sqlite":
        yield f"sqlite:///{tmp}/bench.db"
        return
    from sqlalchemy import create_engine, text

    name = f"loraplane_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def live_server(engine: str = "sqlite", *, workers: int = 0,
                env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    """`loraplane serve` on a free loopback port, on a fresh database, in a temp folder."""
    with tempfile.TemporaryDirectory(prefix="loraplane-bench-") as tmp, \
            database(engine, Path(tmp)) as url, \
            LiveServer(Path(tmp) / "data", url, workers=workers, env=env) as server:
        yield server


def machine() -> str:
    """One line: cores, CPU model, memory, load average (the benchmarks' noise)."""
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.0f} GiB"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {model}, {mem} RAM, load {load}"
