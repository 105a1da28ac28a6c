"""Every error as RFC 9457 `application/problem+json`, from one table of codes."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import HTTP_STATUS, ServiceError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


class FieldProblem(BaseModel):
    loc: str
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldProblem] = []


# Every route behind a token documents these (routers pass them as `responses`).
AUTH_ERRORS: dict[int | str, dict] = {
    401: {"model": Problem, "description": "Missing, unknown or revoked bearer token"},
    403: {"model": Problem, "description": "The token's role or project may not do this"},
}


def document_problem_responses(schema: dict[str, Any]) -> None:
    """Say in the OpenAPI document what error responses really are: `application/problem+json`
    bodies of the `Problem` schema (FastAPI would document them as `application/json`)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "Problem" not in components:
        problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(problem_schema.pop("$defs", {}))
        components["Problem"] = problem_schema
    body = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            if "requestBody" in operation:  # FastAPI's answer to a body it cannot decode
                operation.setdefault("responses", {}).setdefault(
                    "400", {"description": "The body could not be decoded"})
            for status, response in operation.get("responses", {}).items():
                if str(status)[:1] not in ("4", "5"):
                    continue
                content = response.get("content") or {}
                content.pop("application/json", None)  # FastAPI's rendering of the model
                response["content"] = {PROBLEM: body, **content}


def problem(status: int, code: str, detail: str, errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "type": f"urn:loraplane:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "errors": errors or [],
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def status_for(exc: ServiceError) -> int:
    """The exception's own code if the table has it, else its nearest class's code."""
    if exc.code in HTTP_STATUS:
        return HTTP_STATUS[exc.code]
    for cls in type(exc).__mro__:
        if getattr(cls, "code", None) in HTTP_STATUS:
            return HTTP_STATUS[cls.code]
    return 500


async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
    status = status_for(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem(status, exc.code, exc.message, exc.errors, headers=headers)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": ".".join(str(p) for p in err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors()
    ]
    first = errors[0] if errors else {"loc": "", "msg": "invalid request"}
    return problem(422, "invalid_request", f"{first['loc']}: {first['msg']}", errors)


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    status = exc.status_code
    try:
        code = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        code = "http_error"
    return problem(status, code, str(exc.detail), headers=getattr(exc, "headers", None))


async def _integrity_error(_: Request, exc: IntegrityError) -> JSONResponse:
    log.info("integrity error: %s", exc)
    return problem(409, "conflict", "the request conflicts with existing data (unique key)")


async def _database_unavailable(_: Request, exc: OperationalError) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return problem(503, "database_unavailable", "the database is unreachable; retry shortly",
                   headers={"Retry-After": "2"})


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error")
    return problem(500, "internal_error", "internal error; see the server log")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)
