"""Helpers shared by the benchmark scripts: throw-away databases, auth headers, percentiles."""

from __future__ import annotations

import asyncio
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

from tests.live import LiveServer

# The local PostgreSQL the test suite uses (trust auth); a throw-away database per run.
PG_ADMIN = os.environ.get("LORAPLANE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
LEASE_HEADER = "X-Loraplane-Lease"


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   request: bytes) -> tuple[int, bytes]:
    """One written-out HTTP/1.1 request on a keep-alive connection, and its (status, body):
    a client that costs little next to the server it measures."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return int(head[9:12]), await reader.readexactly(length)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(round(q * (len(ordered) - 1)), len(ordered) - 1)]


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


def client(server: LiveServer, *, timeout: float = 60.0) -> httpx.Client:
    """`server.client()`, authenticated as admin whether or not LiveServer does it itself."""
    http = server.client()
    http.timeout = httpx.Timeout(timeout)
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
def live_server(
    engine: str = "sqlite", *, workers: int = 0, env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    """`loraplane serve` on a free loopback port, on a fresh database, in a temp folder."""
    with (
        tempfile.TemporaryDirectory(prefix="loraplane-bench-") as tmp,
        database(engine, Path(tmp)) as url,
        LiveServer(Path(tmp) / "data", url, workers=workers, env=env) as server,
    ):
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


# ---------------------------------------------------------------------------- artifacts


def write_safetensors(path: Path, size: int, *, seed: int = 0) -> str:
    """A valid safetensors file of about `size` bytes (one U8 tensor); returns its sha256.

    The bytes are a 1 MiB random block repeated, so nothing along the way can compress them.
    """
    import hashlib
    import json
    import random

    header = json.dumps({"w": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}})
    body = max(size - 8 - len(header) - 64, 0)
    header = json.dumps({"w": {"dtype": "U8", "shape": [body], "data_offsets": [0, body]}})
    header += " " * (-len(header) % 8)
    digest = hashlib.sha256()
    block = random.Random(seed).randbytes(1 << 20)
    with open(path, "wb") as f:
        for chunk in (len(header).to_bytes(8, "little"), header.encode()):
            f.write(chunk)
            digest.update(chunk)
        left = body
        while left:
            chunk = block[: min(left, len(block))]
            f.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def claim_job(server: LiveServer, http: httpx.Client, spec: dict) -> tuple[str, str]:
    """Submit `spec` and claim it as a worker: (job id, lease id). Needs no other claimer."""
    r = http.post("/jobs", json=spec)
    r.raise_for_status()
    job_id = r.json()["id"]
    r = http.post(
        "/worker/claim",
        json={"worker_id": "bench", "wait_seconds": 5},
        headers=worker_headers(server),
    )
    r.raise_for_status()
    lease = r.json()
    if lease["job"]["id"] != job_id:
        raise RuntimeError(f"claimed {lease['job']['id']}, expected {job_id}")
    return job_id, lease["lease_id"]


def upload_blob(
    server: LiveServer, http: httpx.Client, job_id: str, lease: str, path: Path, sha256: str
) -> httpx.Response:
    """`PUT /worker/jobs/{id}/blobs/{sha}`, streaming the file in 1 MiB chunks."""

    def chunks() -> Iterator[bytes]:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                yield chunk

    headers = {
        **worker_headers(server, lease),
        "Content-Type": "application/octet-stream",
        "Content-Length": str(path.stat().st_size),
    }
    r = http.put(f"/worker/jobs/{job_id}/blobs/{sha256}", content=chunks(), headers=headers)
    r.raise_for_status()
    return r


def register_files(
    server: LiveServer,
    http: httpx.Client,
    files: dict[str, Path],
    *,
    kind: str,
    name: str = "bench",
) -> str:
    """Register `files` as an adapter through the worker protocol (submit, claim, upload,
    complete); returns the adapter id."""
    model = {"model_path": "demo-tiny-llama", "is_lora": kind == "lora"}
    if kind == "lora":
        model["lora_rank"] = 8
    job_id, lease = claim_job(
        server, http, {"actor": {"model": model}, "runner": {"experiment_name": name}}
    )
    refs = []
    for file_name, path in files.items():
        sha256 = file_sha256(path)
        upload_blob(server, http, job_id, lease, path, sha256)
        refs.append({"name": file_name, "sha256": sha256, "size": path.stat().st_size})
    r = http.post(
        f"/worker/jobs/{job_id}/complete",
        headers=worker_headers(server, lease),
        json={"kind": kind, "files": refs, "metrics": {"loss": 1.0}},
    )
    r.raise_for_status()
    return http.get(f"/jobs/{job_id}").json()["adapter_id"]


def tiny_lora_files(folder: Path) -> dict[str, Path]:
    """A small PEFT LoRA folder: adapter_config.json + adapter_model.safetensors."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "adapter_config.json"
    config.write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "r": 8,
                "lora_alpha": 8,
                "target_modules": ["q_proj", "v_proj"],
                "base_model_name_or_path": "demo-tiny-llama",
            }
        )
    )
    weights = folder / "adapter_model.safetensors"
    write_safetensors(weights, 64 << 10)
    return {"adapter_config.json": config, "adapter_model.safetensors": weights}
