"""Submit-to-start delay with idle workers: p50/p99 over N jobs, on SQLite and PostgreSQL.

Idle claimers long-poll `POST /worker/claim`; each job is submitted alone and its delay is
the time from sending `POST /jobs` to a claimer holding it. The baseline, measured in the
same run, is the round trip of `GET /healthz`; the figure is printed as a ratio to it too.

Claims and the finishing `fail` call carry the worker token (once the service has auth); the
submits and the baseline the admin token.

    python bench/dispatch.py [--quick] [--jobs 200] [--claimers 4] [--engine sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import client, live_server, machine, percentile, worker_headers

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
    return {
        "p50_ms": percentile(delays, 0.5) * 1e3,
        "p99_ms": percentile(delays, 0.99) * 1e3,
        "baseline_p50_ms": statistics.median(rtts) * 1e3,
        "baseline_p99_ms": percentile(rtts, 0.99) * 1e3,
    }


def run(engine: str, jobs: int, claimers: int) -> None:
    with live_server(engine) as server:
        figures = measure(server, jobs, claimers)
    ratio = figures["p99_ms"] / figures["baseline_p99_ms"]
    print(
        f"dispatch[{engine}]: submit-to-start p50 {figures['p50_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms over {jobs} jobs ({claimers} idle claimers); "
        f"baseline GET /healthz p99 {figures['baseline_p99_ms']:.1f} ms; "
        f"ratio p99/baseline {ratio:.1f}x; target p99 < 100 ms: "
        f"{'met' if figures['p99_ms'] < 100 else 'MISSED'}; {machine()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="50 jobs per engine (make bench)")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--claimers", type=int, default=4)
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    if args.quick:
        args.jobs = 50
    for engine in ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]:
        run(engine, args.jobs, args.claimers)


if __name__ == "__main__":
    main()
