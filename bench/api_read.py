"""API read path: requests/s and p99 of `GET /adapters/{id}` at concurrency 32.

Target: a live `loraplane serve` (no local workers) holding one adapter registered through the
worker protocol, called with the admin token. Baseline, in the same run: a bare FastAPI app
(defined here) reading the same `adapters` row through SQLAlchemy (`session.get` of the ORM row,
returned as JSON), on the same database, served by uvicorn with the same defaults in its own
process. Both on loopback; the load generator is one asyncio loop in this process with 32
keep-alive HTTP/1.1 connections (hand-written requests, so the client costs little CPU next to
the servers; it shares the machine's cores with them all the same). Each target gets a warm-up,
then a timed window; with --rounds > 1 the targets alternate and each keeps its best round.

    python bench/api_read.py [--quick] [--seconds 8] [--rounds 2] [--engine sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    ROOT,
    admin_token,
    client,
    exchange,
    live_server,
    machine,
    percentile,
    register_files,
    tiny_lora_files,
)

from tests.live import free_port, wait_ready

CONCURRENCY = 32


def bare_app(database_url: str):
    """The baseline: one route, one row read through SQLAlchemy, nothing else."""
    from fastapi import FastAPI, HTTPException
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from db import models

    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    engine = create_engine(database_url)
    app = FastAPI()

    @app.get("/readyz")
    def ready() -> dict:
        return {"status": "ok"}

    @app.get("/adapters/{adapter_id}")
    def get_adapter(adapter_id: str) -> dict:
        with Session(engine) as session:
            row = session.get(models.Adapter, adapter_id)
            if row is None:
                raise HTTPException(404)
            return {c.key: getattr(row, c.key) for c in models.Adapter.__table__.columns}

    return app


async def hammer(
    port: int, path: str, headers: dict[str, str], seconds: float, warmup: float
) -> dict:
    """32 connections, each sending the next request as soon as the last answer is read."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode()
    latencies: list[float] = []
    bad: list[int] = []
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (now := time.perf_counter()) < stop_at:
                status, _ = await exchange(reader, writer, request)
                if now >= measure_from:
                    latencies.append(time.perf_counter() - now)
                    if status != 200:
                        bad.append(status)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(CONCURRENCY)))
    if bad:
        raise RuntimeError(f"{len(bad)} non-200 answers from :{port}{path}, e.g. {bad[:3]}")
    return {
        "rps": len(latencies) / seconds,
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "n": len(latencies),
    }


def measure(engine: str, args: argparse.Namespace) -> dict:
    with (
        live_server(engine) as server,
        client(server) as http,
        tempfile.TemporaryDirectory() as tmp,
    ):
        adapter_id = register_files(server, http, tiny_lora_files(Path(tmp) / "a"), kind="lora")
        path = f"/adapters/{adapter_id}"
        token = admin_token(server)
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        port = free_port()
        bare = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve-bare",
                str(port),
                "--database-url",
                server.database_url,
            ],
            cwd=ROOT,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}", 60, bare)
            got = http.get(path).json()
            import httpx

            plain = httpx.get(f"http://127.0.0.1:{port}{path}").json()
            assert got["id"] == plain["id"] == adapter_id, (got, plain)
            results: dict[str, list[dict]] = {"service": [], "bare": []}
            for _ in range(args.rounds):
                results["service"].append(
                    asyncio.run(hammer(server.port, path, auth, args.seconds, args.warmup))
                )
                results["bare"].append(
                    asyncio.run(hammer(port, path, {}, args.seconds, args.warmup))
                )
        finally:
            bare.terminate()
            bare.wait(10)
    return {k: max(v, key=lambda r: r["rps"]) for k, v in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s windows, 1 round (make bench)")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        import uvicorn

        uvicorn.run(
            bare_app(args.database_url), host="127.0.0.1", port=args.serve_bare, log_level="warning"
        )
        return
    if args.quick:
        args.seconds, args.rounds = 3.0, 1
    for engine in ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]:
        r = measure(engine, args)
        s, b = r["service"], r["bare"]
        print(
            f"api_read[{engine}]: GET /adapters/{{id}} at concurrency {CONCURRENCY}: service "
            f"{s['rps']:.0f} req/s, p50 {s['p50'] * 1e3:.1f} ms, p99 {s['p99'] * 1e3:.1f} ms vs "
            f"bare FastAPI+SQLAlchemy row read {b['rps']:.0f} req/s, p99 "
            f"{b['p99'] * 1e3:.1f} ms; ratio {s['rps'] / b['rps']:.2f}x req/s, "
            f"{s['p99'] / b['p99']:.2f}x p99; {args.seconds:.0f} s windows, best of "
            f"{args.rounds}; {machine()}"
        )


if __name__ == "__main__":
    main()
