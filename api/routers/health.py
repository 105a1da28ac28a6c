"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import StateDep, require
from api.errors import AUTH_ERRORS, problems
from db.migrate import current_revision, head_revision
from service.errors import DatabaseUnavailable, MigrationsPending
from service.schemas import Role

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", operation_id="readyz", response_model=None, summary="Readiness: database reachable, schema at head",
            responses=problems({503: "Not ready"}))
def readyz(state: StateDep) -> dict[str, str]:
    try:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = current_revision(state.engine)
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable(f"database unreachable: {type(exc).__name__}") from exc
    head = head_revision()
    if current != head:
        raise MigrationsPending(f"database schema is at {current!r}, the code needs {head!r}")
    return {"status": "ready", "schema": current or ""}


@router.get("/metrics", operation_id="metrics", summary="Prometheus metrics (admin token)",
            response_class=Response, dependencies=[require(Role.admin)],
            responses={**AUTH_ERRORS, 200: {"content": {"text/plain": {}},
                                            "description": "Prometheus text format"}})
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
