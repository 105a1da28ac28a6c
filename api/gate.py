"""The front gate: callers are authenticated, and JSON bodies bounded, before any body is read.

Without it FastAPI would parse (and validate) a request body before the dependencies that
check the token ran, so an anonymous caller could make the server read a body of any size.

A GET or HEAD request is checked in the read-only session its route then uses
(`api.deps.get_session` takes it over): the token lookup and the route's reads share one
connection and one transaction. A route that does not take it over has it closed before it
runs (`api.deps.get_principal`), else when its response starts, at the latest when the request
ends: no request holds two pooled connections, and no long stream holds it.
Other methods check the token on a connection of its own, so a write transaction (on SQLite,
the write lock) is never held while a body arrives.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import GATE_SESSION, READ_METHODS, close_session
from api.errors import database_unavailable, problem_response
from service.auth import authenticate
from service.datasets import MEDIA_TYPES
from service.errors import PayloadTooLarge, ServiceError
from service.media import normalise_media_type

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/redoc",
                          "/docs/oauth2-redirect"})
UI_PREFIX = "/ui"  # the dashboard's static files: no data; its API calls carry the token


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


# Dataset uploads (and octet-stream blobs), adapter and registry imports: streamed, bounded
# apart by the routes that read them.
STREAMED_TYPES = MEDIA_TYPES | {"application/x-tar", "multipart/form-data"}


class Gate:
    """Pure ASGI middleware: 401 for a bad token, 413 for an oversized JSON body.

    It runs outside FastAPI's exception handlers, so it answers its typed errors through the
    same renderer they use (`api.errors.problem_response`).
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _public(scope["path"]):
            await self.app(scope, receive, send)
            return
        if scope["method"] in READ_METHODS:
            await self._read(scope, receive, send)
            return
        try:
            admitted = await self._admit(scope, receive)
        except ServiceError as exc:
            await problem_response(exc)(scope, receive, send)
            return
        if admitted is not None:
            await self.app(scope, admitted, send)

    async def _read(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET/HEAD: the token checked in the session the route reads with (module doc)."""
        state = scope["app"].state.loraplane
        session = state.session(None, read=True)  # its project is set once the caller is known
        request_state = scope.setdefault("state", {})
        request_state[GATE_SESSION] = session

        async def release_unclaimed(message: Message) -> None:
            if message["type"] == "http.response.start" and GATE_SESSION in request_state:
                await close_session(request_state.pop(GATE_SESSION))
            await send(message)

        try:
            try:
                request_state["principal"] = await run_in_threadpool(
                    _authenticate_in, session, _headers(scope))
            except (ServiceError, SQLAlchemyError) as exc:
                await close_session(request_state.pop(GATE_SESSION))
                error = exc if isinstance(exc, ServiceError) else database_unavailable()
                await problem_response(error)(scope, receive, send)
                return
            await self.app(scope, receive, release_unclaimed)
        finally:
            if GATE_SESSION in request_state:
                await close_session(request_state.pop(GATE_SESSION))

    async def _admit(self, scope: Scope, receive: Receive) -> Receive | None:
        """Authenticate the caller and bound a JSON/YAML body; the `receive` the app should
        read the body from (None: the client left while the body was being read)."""
        headers = _headers(scope)
        state = scope["app"].state.loraplane
        try:
            principal = await run_in_threadpool(self._authenticate, state, headers)
        except SQLAlchemyError:
            raise database_unavailable() from None
        scope.setdefault("state", {})["principal"] = principal

        media = normalise_media_type(headers.get("content-type"))
        if media in STREAMED_TYPES or scope["method"] in ("GET", "HEAD", "DELETE"):
            return receive
        # The largest body a JSON/YAML route takes is a spec; uploads are streamed apart.
        limit = state.settings.max_spec_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"body is {declared} bytes; the limit for this kind of "
                                  f"request is {limit} bytes")
        if declared.isdigit():
            return receive
        # No Content-Length (chunked): such bodies are small by design, so read it here.
        body, more = [], True
        size = 0
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return None
            body.append(message.get("body", b""))
            size += len(body[-1])
            more = message.get("more_body", False)
            if size > limit:
                raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
        return _replay(b"".join(body), receive)

    @staticmethod
    def _authenticate(state, headers: dict[str, str]):
        with state.token_reader.connect() as connection:
            return authenticate(connection, _bearer_token(headers))


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def _bearer_token(headers: dict[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _authenticate_in(session: Session, headers: dict[str, str]):
    """The caller, looked up on the session's own connection (its transaction stays open)."""
    return authenticate(session.connection(), _bearer_token(headers))


def _replay(body: bytes, receive: Receive) -> Receive:
    """Hand the app a body already read, then pass on what the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
