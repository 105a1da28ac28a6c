"""Prometheus metrics: HTTP traffic, and the queue's state read from the database at scrape."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.stats import count_jobs_and_adapters


class QueueCollector(Collector):
    """Jobs by state and adapters registered, counted when Prometheus scrapes."""

    def __init__(self, app: FastAPI):
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = self.app.state.loraplane
        jobs = GaugeMetricFamily("loraplane_jobs", "Jobs by state", labels=["state"])
        adapters = GaugeMetricFamily("loraplane_adapters", "Registered adapters", labels=["kind"])
        with state.session(None) as session:
            counts = count_jobs_and_adapters(session)
        for job_state, count in counts.jobs_by_state.items():
            jobs.add_metric([job_state], count)
        for kind, count in counts.adapters_by_kind.items():
            adapters.add_metric([kind], count)
        yield jobs
        yield adapters


def install(app: FastAPI) -> CollectorRegistry:
    """A registry of this app's metrics, and the (plain ASGI) middleware that feeds it.

    Under `serve --api-processes N` (PROMETHEUS_MULTIPROC_DIR set by `serve` before the API
    processes start), each process writes its counts to files there and a scrape, whichever
    process answers it, adds up those of all of them (prometheus_client's multiprocess mode)."""
    registry = CollectorRegistry()
    shared = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    own = None if shared else registry  # multiprocess: counted in files, read by the collector
    requests = Counter("loraplane_http_requests_total", "HTTP requests",
                       ["method", "route", "status"], registry=own)
    latency = Histogram("loraplane_http_request_seconds", "HTTP request latency (until headers)",
                        ["method", "route"], registry=own)
    if shared:
        MultiProcessCollector(registry, path=shared)
    registry.register(QueueCollector(app))
    app.add_middleware(_Measure, requests=requests, latency=latency)
    return registry


class _Measure:
    def __init__(self, app: ASGIApp, *, requests: Counter, latency: Histogram):
        self.app = app
        self.requests = requests
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                route = getattr(scope.get("route"), "path", "unmatched")
                self.latency.labels(scope["method"], route).observe(time.perf_counter() - start)
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.requests.labels(scope["method"], route, str(status)).inc()
