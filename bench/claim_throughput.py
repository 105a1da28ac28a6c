"""Claim throughput: jobs/s claimed and finished by 16 concurrent workers on PostgreSQL.

A live `loraplane serve` on a fresh PostgreSQL database, no local workers. Each worker is a
keep-alive connection (one asyncio loop, written-out HTTP/1.1 requests, so the client costs
little next to the server) speaking the worker protocol with the worker token:
`POST /worker/claim` (no wait), then `POST /worker/jobs/{id}/fail` with `retryable: false`, the
"finish" of an empty job; a worker stops when a claim finds the queue empty. The jobs are
submitted before the clock starts. Baseline, in the same run: the same number of jobs drained
by 1 worker. Then the 16 workers again against `serve --api-processes N` (a second server on
a database of its own; the kernel spreads the connections among its processes). Checks: every
job claimed exactly once (no double runs), every finish accepted (no lost lease), nothing
left queued or running.

    python bench/claim_throughput.py [--quick] [--jobs 400] [--workers 16]
                                     [--api-processes 2] [--engine postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    LEASE_HEADER,
    client,
    exchange,
    live_server,
    machine,
    percentile,
    worker_headers,
)

SPEC = {"actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": True, "lora_rank": 4}}}


def submit(server, count: int) -> set[str]:
    def one(_: int) -> str:
        with client(server) as http:
            r = http.post("/jobs", json=SPEC)
            r.raise_for_status()
            return r.json()["id"]

    with ThreadPoolExecutor(4) as pool:
        return set(pool.map(one, range(count)))


def warm_up(server) -> None:
    """One claim on the empty queue and one refused finish before any clock starts: the first
    request of each router builds its route state (FastAPI, ~20 routes), once per process."""
    with client(server) as http:
        r = http.post("/worker/claim", json={"worker_id": "warm-up", "wait_seconds": 0},
                      headers=worker_headers(server))
        assert r.status_code == 204, r.text
        r = http.post("/worker/jobs/job_none/fail", headers=worker_headers(server, "ls_none"),
                      json={"code": "bench", "message": "warm-up", "retryable": False})
        assert r.status_code in (404, 409), r.text


def postgres_cpu_seconds() -> float:
    """CPU seconds of every `postgres` process on the machine (its backends and helpers)."""
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if (proc.info["name"] or "").startswith("postgres"):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def own_cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def cpu_seconds(pid: int) -> float:
    """CPU seconds of the server process and its API processes."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def _call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes,
                body: bytes) -> tuple[int, bytes]:
    """A POST of `body` after the request line and headers `head`: (status, body)."""
    return await exchange(reader, writer,
                          head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def drain(server, workers: int) -> dict:
    """Run `workers` connections until the queue is empty; what each claimed and how long it
    took. The workers are one asyncio loop of keep-alive HTTP/1.1 connections with written-out
    requests (as in bench/api_read.py), so the client costs little next to the server."""
    claims: list[str] = []
    latencies: list[float] = []
    errors: list[str] = []
    shares: list[int] = []
    auth = "".join(f"{k}: {v}\r\n" for k, v in worker_headers(server).items())
    host = f"Host: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n{auth}"
    finish = json.dumps({"code": "bench", "message": "empty benchmark job",
                         "retryable": False}).encode()

    async def worker(n: int, opened: list, start: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        opened.append(n)
        claim = json.dumps({"worker_id": f"bench-{n}", "wait_seconds": 0}).encode()
        mine = []
        try:
            await start.wait()
            while True:
                t0 = time.perf_counter()
                status, body = await _call(reader, writer,
                                           f"POST /worker/claim HTTP/1.1\r\n{host}".encode(), claim)
                if status == 204:
                    break
                if status != 200:
                    errors.append(f"claim {status}: {body[:200]!r}")
                    break
                lease = json.loads(body)
                job_id = lease["job"]["id"]
                mine.append(job_id)
                status, body = await _call(
                    reader, writer,
                    f"POST /worker/jobs/{job_id}/fail HTTP/1.1\r\n{host}"
                    f"{LEASE_HEADER}: {lease['lease_id']}\r\n".encode(), finish)
                if status != 200 or json.loads(body)["state"] != "failed":
                    errors.append(f"finish {job_id}: {status} {body[:200]!r}")
                latencies.append(time.perf_counter() - t0)
        finally:
            writer.close()
            claims.extend(mine)
            shares.append(len(mine))

    async def run() -> tuple[float, float, float]:
        opened: list[int] = []
        start = asyncio.Event()
        tasks = [asyncio.create_task(worker(n, opened, start)) for n in range(workers)]
        while len(opened) < workers:  # connections open before the clock starts
            await asyncio.sleep(0.01)
        t0, cpu0 = time.perf_counter(), cpu_seconds(server.proc.pid)
        others0 = postgres_cpu_seconds(), own_cpu_seconds()
        start.set()
        await asyncio.gather(*tasks)
        return t0, cpu0, others0, time.perf_counter()

    t0, cpu0, (pg0, own0), t1 = asyncio.run(run())
    elapsed = t1 - t0
    server_cpu = (cpu_seconds(server.proc.pid) - cpu0) / elapsed
    jobs = max(len(claims), 1)
    return {
        "claims": claims,
        "elapsed": elapsed,
        "errors": errors,
        "latencies": latencies,
        "shares": shares,
        "server_cpu": server_cpu,
        # CPU per job: the API processes, PostgreSQL (every postgres process), this client
        "cpu_per_job": ((cpu_seconds(server.proc.pid) - cpu0) / jobs,
                        (postgres_cpu_seconds() - pg0) / jobs, (own_cpu_seconds() - own0) / jobs),
    }


def check(server, submitted: set[str], result: dict, label: str) -> None:
    counts = collections.Counter(result["claims"])
    doubles = {job: n for job, n in counts.items() if n > 1}
    if doubles:
        raise SystemExit(f"{label}: DOUBLE RUNS: {list(doubles.items())[:5]}")
    if result["errors"]:
        raise SystemExit(f"{label}: {len(result['errors'])} errors, e.g. {result['errors'][:3]}")
    if set(counts) != submitted:
        raise SystemExit(f"{label}: claimed {len(counts)} of {len(submitted)} jobs")
    with client(server) as http:
        for state in ("queued", "running"):
            left = http.get("/jobs", params={"state": state, "limit": 1}).json()["items"]
            if left:
                raise SystemExit(f"{label}: a job is still {state}: {left[0]['id']}")


def run(server, jobs: int, workers: int, label: str) -> dict:
    submitted = submit(server, jobs)
    result = drain(server, workers)
    check(server, submitted, result, label)
    return result


def describe(result: dict, jobs: int) -> str:
    api, postgres, own = (seconds * 1e3 for seconds in result["cpu_per_job"])
    return (f"{jobs / result['elapsed']:.0f} jobs/s (claim+finish p50 "
            f"{percentile(result['latencies'], 0.5) * 1e3:.1f} ms, p99 "
            f"{percentile(result['latencies'], 0.99) * 1e3:.1f} ms, API at "
            f"{result['server_cpu'] * 100:.0f}% of a core; CPU per job: API {api:.1f} ms, "
            f"PostgreSQL {postgres:.1f} ms, client {own:.2f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="150 jobs per side (make bench)")
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--api-processes", type=int, default=2)
    parser.add_argument("--engine", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args()
    if args.quick:
        args.jobs = 150
    with live_server(args.engine) as server:
        warm_up(server)
        one = run(server, args.jobs, 1, "baseline")
        many = run(server, args.jobs, args.workers, "concurrent")
    env = {"LORAPLANE_API_PROCESSES": str(args.api_processes)}
    with live_server(args.engine, env=env) as server:
        warm_up(server)
        spread = run(server, args.jobs, args.workers, f"{args.api_processes} API processes")
    rate = {k: args.jobs / r["elapsed"] for k, r in (("one", one), ("many", many),
                                                      ("spread", spread))}
    print(
        f"claim_throughput[{args.engine}]: {args.workers} workers, 1 API process "
        f"{describe(many, args.jobs)} vs 1 worker {describe(one, args.jobs)}; ratio "
        f"{rate['many'] / rate['one']:.2f}x; {args.workers} workers, {args.api_processes} API "
        f"processes {describe(spread, args.jobs)}: {rate['spread'] / rate['many']:.2f}x one "
        f"process; {args.jobs} jobs each (per worker {min(many['shares'])}-"
        f"{max(many['shares'])}), every job claimed exactly once: 0 double runs, 0 lost "
        f"leases; {machine()}"
    )


if __name__ == "__main__":
    main()
