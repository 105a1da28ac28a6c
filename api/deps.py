"""Dependencies as typed aliases: settings, the caller, database sessions, app state."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import db.scoping  # noqa: F401  (installs the project filter on every session)
from db.engine import read_only
from service.artifacts import ArtifactStore
from service.auth import Forbidden, Principal, Role, Unauthorized
from service.settings import Settings

PROJECT_HEADER = "X-Loraplane-Project"
READ_METHODS = frozenset({"GET", "HEAD"})


class WorkSignal:
    """Wakes every long-polling claim in this process when work may be available."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass


@dataclass
class AppState:
    """What one API process holds: settings, engine, sessions, artifact store, new-work signal."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ArtifactStore
    new_work: WorkSignal = field(default_factory=WorkSignal)
    admin_token_file: Path | None = None
    worker_token: str | None = None

    async def notify_new_work(self) -> None:
        self.new_work.notify()

    def session(self, project: str | None) -> Session:
        """A session confined to `project` (None: every project, for workers and sweeps)."""
        session = self.sessions()
        session.info["project"] = project
        return session


def get_state(request: Request) -> AppState:
    return request.app.state.loraplane


# Dependencies that do no I/O are `async def`: FastAPI then runs them on the event loop
# instead of sending each through the threadpool.
async def _state(request: Request) -> AppState:
    return get_state(request)


async def get_store(request: Request) -> ArtifactStore:
    return get_state(request).store


async def get_base_url(request: Request) -> str:
    """Where clients reach this service: `public_url` if set, else the request's base URL."""
    public = get_state(request).settings.public_url
    return (public or str(request.base_url)).rstrip("/")


_bearer = HTTPBearer(auto_error=False, description="A loraplane token: `lp_tok_…`.")


async def get_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller the gate (api/gate.py) authenticated; an admin may act in another project
    by header. `_credentials` only puts the bearer scheme into the OpenAPI document."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # a public path: no route there asks for a caller
        raise Unauthorized("missing bearer token: send `Authorization: Bearer <token>`")
    override = request.headers.get(PROJECT_HEADER)
    if override and override != principal.project:
        if principal.role is not Role.admin:
            raise Forbidden(f"only an admin token may act in another project ({PROJECT_HEADER})")
        principal = principal.model_copy(update={"project": override})
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*roles: Role) -> Depends:
    """A router dependency admitting only these roles (403 for the others)."""

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"a {principal.role.value} token cannot do this (needs: {allowed})")
        return principal

    return Depends(check)


def get_session(request: Request, principal: PrincipalDep) -> Iterator[Session]:
    """A session that sees only the caller's project (read-only for GET and HEAD)."""
    with get_state(request).session(principal.project) as session:
        if request.method in READ_METHODS:
            read_only(session)
        yield session


def get_worker_session(request: Request) -> Iterator[Session]:
    """A session across projects: workers run any project's jobs, fenced by their lease."""
    with get_state(request).session(None) as session:
        if request.method in READ_METHODS:
            read_only(session)
        yield session


StateDep = Annotated[AppState, Depends(_state)]
SessionDep = Annotated[Session, Depends(get_session)]
WorkerSessionDep = Annotated[Session, Depends(get_worker_session)]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]
BaseUrlDep = Annotated[str, Depends(get_base_url)]
