"""Submit-to-start delay with idle workers: p50/p99 over N jobs, on SQLite and PostgreSQL.

Idle claimers long-poll `POST /worker/claim`; each job is submitted alone and its delay is
the time from sending `POST /jobs` to a claimer holding it. The baseline, measured in the
same run, is the round trip of `GET /healthz`; the figure is printed as a ratio to it too.

    python bench/dispatch.py [--jobs 200] [--claimers 4] [--engine sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live import LiveServer  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SPEC = {"actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": True, "lora_rank": 4}}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(round(q * (len(ordered) - 1))), len(ordered) - 1)]


def measure(url: str, jobs: int, claimers: int) -> dict[str, float]:
    claimed: dict[str, float] = {}
    done = threading.Event()

    def claimer(n: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while not done.is_set():
                r = http.post("/worker/claim", json={"worker_id": f"bench{n}", "wait_seconds": 2})
                if r.status_code != 200:
                    continue
                lease = r.json()
                claimed[lease["job"]["id"]] = time.perf_counter()
                http.post(f"/worker/jobs/{lease['job']['id']}/fail",
                          headers={"X-Loraplane-Lease": lease["lease_id"]},
                          json={"code": "bench", "message": "benchmark job", "retryable": False})

    threads = [threading.Thread(target=claimer, args=(n,), daemon=True) for n in range(claimers)]
    for t in threads:
        t.start()
    delays, rtts = [], []
    with httpx.Client(base_url=url, timeout=60) as http:
        time.sleep(0.5)  # every claimer is parked in its long-poll
        for _ in range(jobs):
            start = time.perf_counter()
            http.get("/healthz")
            rtts.append(time.perf_counter() - start)
            sent = time.perf_counter()
            job_id = http.post("/jobs", json=SPEC).json()["id"]
            deadline = time.monotonic() + 10
            while job_id not in claimed and time.monotonic() < deadline:
                time.sleep(0.0005)
            delays.append(claimed[job_id] - sent)
            time.sleep(0.01)
    done.set()
    return {"p50_ms": percentile(delays, 0.5) * 1e3, "p99_ms": percentile(delays, 0.99) * 1e3,
            "baseline_p50_ms": statistics.median(rtts) * 1e3,
            "baseline_p99_ms": percentile(rtts, 0.99) * 1e3}


def run(engine: str, jobs: int, claimers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if engine == "sqlite":
            url = f"sqlite:///{tmp}/bench.db"
            drop = None
        else:
            name = f"loraplane_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
            drop = (admin, name)
        try:
            with LiveServer(Path(tmp) / "data", url) as server:
                figures = measure(server.url, jobs, claimers)
        finally:
            if drop:
                with drop[0].connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{drop[1]}" WITH (FORCE)'))
    ratio = figures["p99_ms"] / figures["baseline_p99_ms"]
    print(f"dispatch[{engine}]: submit-to-start p50 {figures['p50_ms']:.1f} ms, "
          f"p99 {figures['p99_ms']:.1f} ms over {jobs} jobs ({claimers} idle claimers); "
          f"baseline GET /healthz p99 {figures['baseline_p99_ms']:.1f} ms; "
          f"ratio p99/baseline {ratio:.1f}x; target p99 < 100 ms: "
          f"{'met' if figures['p99_ms'] < 100 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--claimers", type=int, default=4)
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    for engine in (["sqlite", "postgresql"] if args.engine == "both" else [args.engine]):
        run(engine, args.jobs, args.claimers)


if __name__ == "__main__":
    main()
