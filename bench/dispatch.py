"""Submit-to-start delay with idle workers: p50/p99 over N jobs, on SQLite and PostgreSQL.

Idle claimers long-poll `POST /worker/claim`; each job is submitted alone and its delay is
the time from sending `POST /jobs` to a claimer holding it. The baseline, measured in the
same run, is the round trip of `GET /healthz`; the figure is printed as a ratio to it too.

Claims and the finishing `fail` call carry the worker token (once the service has auth); the
submits and the baseline the admin token.

With `--load N` (default 4) the same is measured a second time with N client threads reading
`GET /adapters/{id}` back to back beside it (the API-read benchmark's request, on the same
server): the delay a submit sees on a busy API, not only on an idle one. The line gives both.

    python bench/dispatch.py [--quick] [--jobs 200] [--claimers 4] [--load 4]
                             [--engine sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    client,
    live_server,
    machine,
    percentile,
    register_files,
    tiny_lora_files,
    worker_headers,
)

SPEC = {"actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": True, "lora_rank": 4}}}


def measure(server, jobs: int, claimers: int) -> dict[str, float]:
    claimed: dict[str, float] = {}
    done = threading.Event()
    errors: list[str] = []

    def claimer(n: int) -> None:
        with client(server, timeout=60) as http:
            while not done.is_set():
                r = http.post(
                    "/worker/claim",
                    json={"worker_id": f"bench{n}", "wait_seconds": 2},
                    headers=worker_headers(server),
                )
                if r.status_code != 200:
                    if r.status_code != 204:
                        errors.append(f"claim: {r.status_code} {r.text[:200]}")
                        time.sleep(0.5)
                    continue
                lease = r.json()
                claimed[lease["job"]["id"]] = time.perf_counter()
                r = http.post(
                    f"/worker/jobs/{lease['job']['id']}/fail",
                    headers=worker_headers(server, lease["lease_id"]),
                    json={"code": "bench", "message": "benchmark job", "retryable": False},
                )
                if r.status_code != 200:
                    errors.append(f"fail: {r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=claimer, args=(n,), daemon=True) for n in range(claimers)]
    for t in threads:
        t.start()
    delays, rtts = [], []
    with client(server, timeout=60) as http:
        time.sleep(0.5)  # every claimer is parked in its long-poll
        for _ in range(jobs):
            start = time.perf_counter()
            http.get("/healthz")
            rtts.append(time.perf_counter() - start)
            sent = time.perf_counter()
            r = http.post("/jobs", json=SPEC)
            r.raise_for_status()
            job_id = r.json()["id"]
            deadline = time.monotonic() + 10
            while job_id not in claimed and time.monotonic() < deadline:
                time.sleep(0.0005)
            if job_id not in claimed:
                raise RuntimeError(
                    f"job {job_id} not claimed in 10 s; claimer errors: {errors[-3:]}"
                )
            delays.append(claimed[job_id] - sent)
            time.sleep(0.01)
    done.set()
    for t in threads:  # a claimer still polling would take the next measurement's jobs
        t.join(10)
    return {
        "p50_ms": percentile(delays, 0.5) * 1e3,
        "p99_ms": percentile(delays, 0.99) * 1e3,
        "baseline_p50_ms": statistics.median(rtts) * 1e3,
        "baseline_p99_ms": percentile(rtts, 0.99) * 1e3,
    }


def reads_beside(server, adapter_id: str, threads: int, stop: threading.Event,
                 done: list[int]) -> list[threading.Thread]:
    """`threads` clients reading one adapter back to back until `stop`; counts in `done`."""

    def reader() -> None:
        with client(server) as http:
            while not stop.is_set():
                http.get(f"/adapters/{adapter_id}").raise_for_status()
                done.append(1)

    started = [threading.Thread(target=reader, daemon=True) for _ in range(threads)]
    for t in started:
        t.start()
    return started


def run(engine: str, jobs: int, claimers: int, load: int) -> None:
    with live_server(engine) as server:
        # Registered first: the claimers of a measurement may still be polling after it.
        with tempfile.TemporaryDirectory() as tmp, client(server) as http:
            adapter_id = register_files(server, http, tiny_lora_files(Path(tmp) / "a"),
                                        kind="lora")
        figures = measure(server, jobs, claimers)
        loaded, rate = None, 0.0
        if load:
            stop, done = threading.Event(), []
            readers = reads_beside(server, adapter_id, load, stop, done)
            time.sleep(0.5)
            t0, n0 = time.perf_counter(), len(done)
            loaded = measure(server, jobs, claimers)
            rate = (len(done) - n0) / (time.perf_counter() - t0)
            stop.set()
            for t in readers:
                t.join(30)
    ratio = figures["p99_ms"] / figures["baseline_p99_ms"]
    worst = max(figures["p99_ms"], loaded["p99_ms"] if loaded else 0.0)
    beside = (
        f"; with {load} readers beside it ({rate:.0f} GET /adapters/{{id}}/s): p50 "
        f"{loaded['p50_ms']:.1f} ms, p99 {loaded['p99_ms']:.1f} ms, baseline p99 "
        f"{loaded['baseline_p99_ms']:.1f} ms" if loaded else ""
    )
    print(
        f"dispatch[{engine}]: submit-to-start p50 {figures['p50_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms over {jobs} jobs ({claimers} idle claimers); "
        f"baseline GET /healthz p99 {figures['baseline_p99_ms']:.1f} ms; "
        f"ratio p99/baseline {ratio:.1f}x{beside}; target p99 < 100 ms: "
        f"{'met' if worst < 100 else 'MISSED'}; {machine()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="50 jobs per engine (make bench)")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--claimers", type=int, default=4)
    parser.add_argument("--load", type=int, default=4, help="reader threads beside (0: none)")
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    if args.quick:
        args.jobs = 50
    for engine in ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]:
        run(engine, args.jobs, args.claimers, args.load)


if __name__ == "__main__":
    main()
