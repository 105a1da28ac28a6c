"""Prometheus metrics: HTTP traffic, and the queue's state read from the database at scrape."""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from db import models
from service.domain import JobState


class QueueCollector(Collector):
    """Jobs by state and adapters registered, counted when Prometheus scrapes."""

    def __init__(self, app: FastAPI):
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = self.app.state.loraplane
        jobs = GaugeMetricFamily("loraplane_jobs", "Jobs by state", labels=["state"])
        adapters = GaugeMetricFamily("loraplane_adapters", "Registered adapters", labels=["kind"])
        with state.session(None) as session:
            counts = dict(session.execute(
                select(models.Job.state, func.count()).group_by(models.Job.state)).all())
            kinds = dict(session.execute(
                select(models.Adapter.kind, func.count()).group_by(models.Adapter.kind)).all())
        for job_state in JobState:
            jobs.add_metric([job_state.value], counts.get(job_state.value, 0))
        for kind in ("lora", "full"):
            adapters.add_metric([kind], kinds.get(kind, 0))
        yield jobs
        yield adapters


def install(app: FastAPI) -> CollectorRegistry:
    """A registry of this app's metrics, and the middleware that feeds it."""
    registry = CollectorRegistry()
    requests = Counter("loraplane_http_requests_total", "HTTP requests",
                       ["method", "route", "status"], registry=registry)
    latency = Histogram("loraplane_http_request_seconds", "HTTP request latency (until headers)",
                        ["method", "route"], registry=registry)
    registry.register(QueueCollector(app))

    @app.middleware("http")
    async def count(request: Request, call_next) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        requests.labels(request.method, path, str(response.status_code)).inc()
        latency.labels(request.method, path).observe(time.perf_counter() - start)
        return response

    return registry
