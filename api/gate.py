"""The front gate: callers are authenticated, and JSON bodies bounded, before any body is read.

Without it FastAPI would parse (and validate) a request body before the dependencies that
check the token ran, so an anonymous caller could make the server read a body of any size.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem
from service.auth import authenticate
from service.datasets import MEDIA_TYPES
from service.errors import ServiceError

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/redoc",
                          "/docs/oauth2-redirect"})
STREAMED_TYPES = MEDIA_TYPES  # dataset uploads (and octet-stream blobs): streamed, bounded apart


class Gate:
    """Pure ASGI middleware: 401 for a bad token, 413 for an oversized JSON body."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        state = scope["app"].state.loraplane
        try:
            principal = await run_in_threadpool(self._authenticate, state, headers)
        except ServiceError as exc:
            response = problem(401, exc.code, exc.message, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        except SQLAlchemyError:
            response = problem(503, "database_unavailable", "the database is unreachable; retry "
                               "shortly", headers={"Retry-After": "2"})
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal

        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media in STREAMED_TYPES or scope["method"] in ("GET", "HEAD", "DELETE"):
            await self.app(scope, receive, send)
            return
        # The largest body a JSON/YAML route takes is a spec; uploads are streamed apart.
        limit = state.settings.max_spec_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            response = problem(413, "payload_too_large", f"body is {declared} bytes; the limit "
                               f"for this kind of request is {limit} bytes")
            await response(scope, receive, send)
            return
        if declared.isdigit():
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): such bodies are small by design, so read it here.
        body, more = [], True
        size = 0
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body.append(message.get("body", b""))
            size += len(body[-1])
            more = message.get("more_body", False)
            if size > limit:
                response = problem(413, "payload_too_large",
                                   f"body is over the limit of {limit} bytes")
                await response(scope, receive, send)
                return
        await self.app(scope, _replay(b"".join(body), receive), send)

    @staticmethod
    def _authenticate(state, headers: dict[str, str]):
        scheme, _, token = headers.get("authorization", "").partition(" ")
        with state.reader.connect() as connection:
            return authenticate(connection, token.strip() if scheme.lower() == "bearer" else None)




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
