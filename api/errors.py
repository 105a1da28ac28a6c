"""Every error as RFC 9457 `application/problem+json`; the one table of code -> HTTP status."""

from __future__ import annotations

import errno
import logging
from http import HTTPStatus
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import (
    ArtifactStoreUnavailable,
    Conflict,
    DatabaseUnavailable,
    InsufficientStorage,
    InvalidRequest,
    ServiceError,
)

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
def problems(descriptions: dict[int, str | None]) -> dict[int | str, dict]:
    """OpenAPI `responses` for error statuses, each a `Problem` with an optional description."""
    return {status: {"model": Problem, **({"description": text} if text else {})}
            for status, text in descriptions.items()}


AUTH_ERRORS = problems({
    401: "Missing, unknown or revoked bearer token",
    403: "The token's role or project may not do this",
})


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


# Every code the server raises, and its HTTP status. Each is listed: no status is inferred
# from an error's class, and a code missing here is a bug (logged, answered 500).
# tests/api/test_error_table.py reads service/ and api/ and fails on a code without a row.
STATUS_BY_CODE: dict[str, int] = {
    # 401, 403: who is calling
    "unauthorized": 401,
    "forbidden": 403,
    # 404
    "not_found": 404,
    "dataset_not_found": 404,
    # 409: the request conflicts with the state of things
    "conflict": 409,
    "lease_lost": 409,
    "invalid_transition": 409,
    "idempotency_conflict": 409,
    "idempotency_race": 409,
    "job_finished": 409,
    "adapter_in_use": 409,
    "import_conflict": 409,
    "wrong_job_kind": 409,
    # 413, 415, 416
    "payload_too_large": 413,
    "artifact_too_large": 413,
    "dataset_too_large": 413,
    "import_too_large": 413,
    "unsupported_media_type": 415,
    "range_not_satisfiable": 416,
    # 422: a request or a spec that breaks a rule
    "invalid_request": 422,
    "invalid_cursor": 422,
    "invalid_last_event_id": 422,
    "invalid_token": 422,
    "invalid_alias": 422,
    "invalid_sha256": 422,
    "checksum_mismatch": 422,
    "truncated_artifact": 422,
    "invalid_artifact": 422,
    "blob_missing": 422,
    "unsafe_file_name": 422,
    "pickle_refused": 422,
    "invalid_safetensors": 422,
    "invalid_adapter_config": 422,
    "tensor_shape_mismatch": 422,
    "invalid_archive": 422,
    "invalid_adapter_name": 422,
    "invalid_base_model": 422,
    "invalid_tag": 422,
    "invalid_description": 422,
    "invalid_order_by": 422,
    "invalid_dataset": 422,
    "invalid_dataset_name": 422,
    "invalid_spec": 422,
    "invalid_lora_path": 422,
    "data_path_not_allowed": 422,
    "unknown_dataset": 422,
    "dataset_missing_key": 422,
    "base_model_required": 422,
    "task_result_mismatch": 422,
    "invalid_webhook_url": 422,
    "webhook_url_not_allowed": 422,
    # 5xx
    "internal_error": 500,
    "database_unavailable": 503,
    "artifact_store_unavailable": 503,
    "insufficient_storage": 507,
    "migrations_pending": 503,
}


def status_for(code: str) -> int:
    """The HTTP status of an error code; 500 (and an error in the log) for an unlisted one."""
    status = STATUS_BY_CODE.get(code)
    if status is None:
        log.error("bug: error code %r has no HTTP status in api.errors.STATUS_BY_CODE; "
                  "answered 500", code)
        return 500
    return status


def problem_response(exc: ServiceError) -> JSONResponse:
    """The one rendering of a server error: its code's status, its headers, a problem body.
    A 401 names the scheme to authenticate with (RFC 9110 §11.6.1)."""
    status = status_for(exc.code)
    headers = dict(exc.headers)
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return _problem(status, exc.code, exc.message, exc.errors, headers=headers or None)


def database_unavailable() -> DatabaseUnavailable:
    """What a request that cannot reach the database is answered."""
    return DatabaseUnavailable("the database is unreachable; retry shortly",
                               headers={"Retry-After": "2"})


def _problem(status: int, code: str, detail: str, errors: list[dict[str, Any]] | None = None,
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


async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
    return problem_response(exc)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": ".".join(str(p) for p in err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors()
    ]
    first = errors[0] if errors else {"loc": "", "msg": "invalid request"}
    return problem_response(InvalidRequest(f"{first['loc']}: {first['msg']}", errors=errors))


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    """The framework's own errors (no route: 404, wrong method: 405): their status, named."""
    status = exc.status_code
    try:
        code = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        code = "http_error"
    return _problem(status, code, str(exc.detail), headers=getattr(exc, "headers", None))


async def _integrity_error(_: Request, exc: IntegrityError) -> JSONResponse:
    log.info("integrity error: %s", exc)
    return problem_response(Conflict("the request conflicts with existing data (unique key)"))


async def _database_unavailable(_: Request, exc: OperationalError) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return problem_response(database_unavailable())


async def _artifact_store_failed(_: Request, exc: BotoCoreError | ClientError) -> JSONResponse:
    """boto3's errors (the S3 store): the object store refused, failed or was unreachable.
    Answered 503, which workers send again (worker/client.py), naming the store's error code
    (or boto's error class); its message, with endpoint and keys, goes to the log only."""
    log.warning("artifact store failed: %s", exc)
    what = (exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError)
            else None) or type(exc).__name__
    return problem_response(ArtifactStoreUnavailable(
        f"the artifact store failed ({what}); retry shortly", headers={"Retry-After": "2"}))


async def _os_error(request: Request, exc: OSError) -> JSONResponse:
    """A full disk (the local artifact store, a temp file) is the operator's to fix: 507,
    said so; any other OSError is unexpected."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        log.error("out of disk space: %s", exc)
        return problem_response(InsufficientStorage(
            "the server's storage is full; an operator must free space (or raise the quota)"))
    return await _unexpected(request, exc)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error")
    return problem_response(ServiceError("internal error; see the server log"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(BotoCoreError, _artifact_store_failed)
    app.add_exception_handler(ClientError, _artifact_store_failed)
    app.add_exception_handler(OSError, _os_error)
    app.add_exception_handler(Exception, _unexpected)
