"""The application factory."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api import errors, metrics, ui
from api.deps import AppState
from api.gate import Gate
from api.routers import (
    adapters,
    aliases,
    checkpoints,
    datasets,
    evaluations,
    health,
    jobs,
    registry_archive,
    samples,
    tokens,
    webhooks,
    worker,
)
from db.engine import make_engine
from db.migrate import upgrade
from service import auth, queue
from service.artifacts import open_store
from service.registry import blobs, serving
from service.settings import Settings, get_settings
from service.spec import JobSpec
from service.webhooks import delivery as webhook_delivery

log = logging.getLogger(__name__)
BLOB_SWEEP_SECONDS = 600.0  # how often unreferenced blobs past their grace are collected

ROUTERS = [health.router, jobs.router, worker.router, adapters.router, aliases.router,
           checkpoints.router, datasets.router, tokens.router, registry_archive.router,
           evaluations.router, samples.router, webhooks.router]


def create_app(settings: Settings | None = None, *, migrate: bool = True,
               freeze_gc: bool = False) -> FastAPI:
    """Build the API; `migrate` prepares the database (`prepare_database`) before serving;
    `freeze_gc` (the server commands) moves what start-up built out of the collector's way."""
    settings = settings or get_settings()
    engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            await run_in_threadpool(prepare_database, app.state.loraplane)
        _build_routes(app)
        if freeze_gc:
            # Modules, routes, settings and the app live as long as the process: frozen, the
            # full collections of a busy API stay short (BENCHMARKS.md section 5: p99).
            gc.collect()
            gc.freeze()
        sweeper = asyncio.create_task(_housekeeping_forever(app.state.loraplane))
        # Webhook messages of the outbox, sent by every replica (they share the work).
        state = app.state.loraplane
        deliveries = asyncio.create_task(webhook_delivery.deliver_forever(
            lambda: state.session(None), state.settings,
            open_reader=lambda: state.session(None, read=True)))
        yield
        deliveries.cancel()
        sweeper.cancel()
        engine.dispose()

    app = FastAPI(
        title="loraplane",
        version="0.1.0",
        summary="Train, register, download and resume LoRA adapters.",
        lifespan=lifespan,
    )
    app.state.loraplane = AppState(settings=settings, engine=engine,
                                   store=open_store(settings))
    errors.install(app)
    app.state.metrics = metrics.install(app)
    app.add_middleware(Gate)  # token checked and body bounded before any body is read
    for router in ROUTERS:
        app.include_router(router)
    ui.mount(app)  # the dashboard at /ui: static files that call this API
    _document_spec_schema(app)
    return app


def _build_routes(app: FastAPI) -> None:
    """Build every router's routes (their parameters and response fields) before serving:
    FastAPI builds those of a router on the first request that reaches it, and that request
    waited for it (~20 routes, tenths of a second on a busy machine)."""
    for route in app.router.routes:
        build = getattr(route, "effective_candidates", None)  # FastAPI's included routers
        if build is not None:
            build()


def prepare_database(state: AppState) -> None:
    """Once per start, before any request: `alembic upgrade head`, the bootstrap tokens, the
    serving verdicts of adapters older than them. `serve` with several API processes runs it
    in the parent, before they start."""
    upgrade(state.engine)
    _bootstrap_tokens(state)
    _backfill_serving_verdicts(state)


def _bootstrap_tokens(state: AppState) -> None:
    settings = state.settings
    with state.session(None) as session:
        state.admin_token_file, state.worker_token = auth.bootstrap_tokens(
            session, settings.data_dir, admin_token=settings.admin_token,
            worker_token=settings.worker_token)
        session.commit()


def _backfill_serving_verdicts(state: AppState) -> None:
    """Serving verdicts for adapters registered before migration 0006 (read from the store)."""
    with state.session(None) as session:
        filled = serving.backfill_verdicts(session, state.store)
        session.commit()
    if filled:
        log.info("computed the serving verdicts of %d earlier adapters", filled)


async def _housekeeping_forever(state: AppState) -> None:
    """Requeue jobs whose worker stopped heartbeating, a few times per lease; now and then,
    collect blobs nothing refers to (past `blob_grace_seconds`) and stale temp files."""
    interval = max(min(state.settings.lease_seconds / 3, 5.0), 0.05)

    def sweep() -> int:
        with state.sessions() as session:
            count = queue.expire_leases(session)
            session.commit()
            return count

    def sweep_blobs() -> None:
        with state.session(None) as session:
            blobs.sweep_blobs(session, state.store,
                                 timedelta(seconds=state.settings.blob_grace_seconds))

    next_blob_sweep = 0.0
    while True:
        await asyncio.sleep(interval)
        try:
            if await run_in_threadpool(sweep):
                state.new_work.notify_all()
            if time.monotonic() >= next_blob_sweep:
                next_blob_sweep = time.monotonic() + BLOB_SWEEP_SECONDS
                await run_in_threadpool(sweep_blobs)
        except Exception:  # the database may be briefly away; try again next round
            log.warning("housekeeping failed", exc_info=True)


def _document_spec_schema(app: FastAPI) -> None:
    """Put `JobSpec` into the OpenAPI components: POST /jobs reads it from a raw body."""
    original = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        spec_schema = JobSpec.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(spec_schema.pop("$defs", {}))
        components["JobSpec"] = spec_schema
        # A job's `spec` is that JobSpec with its defaults filled in: say so, so clients get
        # a typed spec (and the generated SDK no inline "JobSpec" clashing with this one).
        job_spec = components["Job"]["properties"]["spec"]
        components["Job"]["properties"]["spec"] = {
            "$ref": "#/components/schemas/JobSpec", "description": job_spec.get("description", "")}
        errors.document_problem_responses(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
