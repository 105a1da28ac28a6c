"""Dependencies as typed aliases: settings, the caller, database sessions, app state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

import db.scoping  # noqa: F401  (installs the project filter on every session)
from db.engine import make_sessionmaker, reading
from service.artifacts import ArtifactStore
from service.auth import Principal
from service.errors import Forbidden, Unauthorized
from service.schemas import Role
from service.settings import Settings

PROJECT_HEADER = "X-Loraplane-Project"
READ_METHODS = frozenset({"GET", "HEAD"})
# The read-only session a GET/HEAD request's token was checked in (api/gate.py), in the
# request's state until a session dependency takes it over.
GATE_SESSION = "gate_session"


class WorkSignal:
    """Wakes long-polling claims in this process when work arrives: for each new job, the one
    claim waiting longest among those offering enough devices. Waking every waiter instead
    would have each of them run a claim for the one job (with 100 idle workers: 100 claim
    statements and 99 empty answers per submit, queued on the same cores as the submit).
    `notify_all` is for when what arrived is not known (leases the sweep expired). A job of
    another replica, or one a woken claim missed, is found by the claims' database poll
    (`queue_poll_seconds`)."""

    def __init__(self) -> None:
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []  # (devices offered, waiter), oldest first

    def notify(self, devices: int | None = None) -> None:
        """A job needing `devices` (None: one) is queued: wake the oldest waiter it fits."""
        need = devices or 1
        for n, (offered, waiter) in enumerate(self._waiters):
            if offered >= need and not waiter.done():
                del self._waiters[n]
                waiter.set_result(None)
                return

    def notify_all(self) -> None:
        waiters, self._waiters = self._waiters, []
        for _, waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, timeout: float, *, devices: int = 1) -> None:
        """Until a `notify` picks this waiter, or `timeout` seconds."""
        entry = (devices, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(entry[1], timeout)
        except TimeoutError:
            pass
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)


@dataclass
class AppState:
    """What one API process holds: settings, engine, sessions, artifact store, new-work signal."""

    settings: Settings
    engine: Engine
    store: ArtifactStore
    new_work: WorkSignal = field(default_factory=WorkSignal)
    admin_token_file: Path | None = None
    worker_token: str | None = None
    reader: Engine = field(init=False)  # the engine for read-only transactions
    # Where a POST's (PUT's, DELETE's) token is looked up: on PostgreSQL in autocommit, one
    # statement without BEGIN and ROLLBACK around it (two round trips fewer); on SQLite the
    # reader (a DEFERRED read, which costs no round trip).
    token_reader: Engine = field(init=False)
    sessions: sessionmaker[Session] = field(init=False)
    read_sessions: sessionmaker[Session] = field(init=False)

    def __post_init__(self) -> None:
        self.reader = reading(self.engine)
        self.token_reader = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.engine.dialect.name == "postgresql" else self.reader)
        self.sessions = make_sessionmaker(self.engine)
        self.read_sessions = make_sessionmaker(self.reader)

    def session(self, project: str | None, *, read: bool = False) -> Session:
        """A session confined to `project` (None: every project, for workers and sweeps);
        `read`: one that only reads (see db.engine.reading)."""
        session = (self.read_sessions if read else self.sessions)()
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
    request_state = request.scope.get("state", {})
    if GATE_SESSION in request_state and not _takes_session(request.scope.get("route")):
        # A GET route that opens sessions of its own: the gate's goes before it runs, so a
        # request never holds two pooled connections at once (30 such requests would
        # otherwise hold the whole pool, each waiting for its second).
        await close_session(request_state.pop(GATE_SESSION))
    override = request.headers.get(PROJECT_HEADER)
    if override and override != principal.project:
        if principal.role is not Role.admin:
            raise Forbidden(f"only an admin token may act in another project ({PROJECT_HEADER})")
        principal = principal.model_copy(update={"project": override})
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
_TAKES_SESSION: dict[int, tuple[object, bool]] = {}  # id(dependant): (dependant, answer)


def _takes_session(route: object) -> bool:
    """Whether a route's dependencies include `get_session` (it takes the gate's session);
    worked out once per route."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return False
    cached = _TAKES_SESSION.get(id(dependant))
    if cached is None or cached[0] is not dependant:

        def uses(d: object) -> bool:
            return getattr(d, "call", None) is get_session or any(
                uses(sub) for sub in getattr(d, "dependencies", ()))

        cached = _TAKES_SESSION[id(dependant)] = (dependant, uses(dependant))
    return cached[1]


def require(*roles: Role) -> Depends:
    """A router dependency admitting only these roles (403 for the others)."""

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"a {principal.role.value} token cannot do this (needs: {allowed})")
        return principal

    return Depends(check)


async def close_session(session: Session) -> None:
    """Close a request's session without blocking the event loop on I/O."""
    # Closing a session that never connected does no I/O: that runs on the event loop; one
    # that is in a transaction ends it in the threadpool, shielded so that a client that hung
    # up still frees its connection.
    if session.in_transaction():
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(session.close)
    else:
        session.close()


@asynccontextmanager
async def _request_session(request: Request, project: str | None, *,
                           reuse: bool) -> AsyncIterator[Session]:
    # Opening a session does no I/O (it connects on first use, in the endpoint's thread), so
    # this runs on the event loop. `reuse`: take over the gate's read session, in which the
    # token was checked (one connection, one transaction for the whole GET).
    gate_session = request.scope.get("state", {}).pop(GATE_SESSION, None)
    if gate_session is not None and not reuse:
        await close_session(gate_session)
        gate_session = None
    if gate_session is not None:
        session = gate_session
        session.info["project"] = project
    else:
        session = get_state(request).session(project, read=request.method in READ_METHODS)
    try:
        yield session
    finally:
        await close_session(session)


async def get_session(request: Request, principal: PrincipalDep) -> AsyncIterator[Session]:
    """A session that sees only the caller's project (read-only for GET and HEAD)."""
    async with _request_session(request, principal.project, reuse=True) as session:
        yield session


async def get_worker_session(request: Request) -> AsyncIterator[Session]:
    """A session across projects: workers run any project's jobs, fenced by their lease.
    Never the gate's read session: a worker's GET may write (the lease fence), and on SQLite a
    transaction that read first cannot safely start writing."""
    async with _request_session(request, None, reuse=False) as session:
        yield session


StateDep = Annotated[AppState, Depends(_state)]
# scope="function": a session closes when its endpoint returns, not after the response is
# sent, so a download streaming for minutes holds no database connection.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
WorkerSessionDep = Annotated[Session, Depends(get_worker_session, scope="function")]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]
BaseUrlDep = Annotated[str, Depends(get_base_url)]

# The paging parameters of every list (each route gives `limit` its own default).
LimitQuery = Annotated[int, Query(ge=1, le=500)]
CursorQuery = Annotated[str | None, Query(max_length=512)]
