"""Every error code the server raises has exactly one HTTP status, in api.errors.STATUS_BY_CODE.

The codes are found by reading the source of service/ and api/ (the server): the `code`
class attribute of every ServiceError subclass, and every literal `code="..."` passed when
an exception is built. Codes a worker reports about a job (`out_of_memory`, …) are data in
the job's stored error, not HTTP errors; they are raised in worker/, which is not read here.
"""

from __future__ import annotations

import ast
import logging
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api.errors import STATUS_BY_CODE, install
from service.errors import ServiceError
from tests import REPO

ROOT = REPO
SERVER_PACKAGES = ("service", "api")
BASE = "ServiceError"


def _name(node: ast.expr) -> str | None:
    """`X` for `X` and `module.X`; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _parse(roots: list[Path]) -> list[tuple[str, ast.Module]]:
    modules = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            modules.append((str(path.relative_to(root.parent)), ast.parse(path.read_text(), str(path))))
    return modules


def _error_classes(modules: list[tuple[str, ast.Module]]) -> dict[str, tuple[str, str | None]]:
    """ServiceError and every class deriving from it, directly or not: name -> (where, code)."""
    classes: dict[str, tuple[str, list[str], str | None]] = {}
    for where, module in modules:
        for node in ast.walk(module):
            if not isinstance(node, ast.ClassDef):
                continue
            code = None
            for statement in node.body:
                target = value = None
                if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                    target, value = statement.targets[0], statement.value
                elif isinstance(statement, ast.AnnAssign):
                    target, value = statement.target, statement.value
                if (isinstance(target, ast.Name) and target.id == "code"
                        and isinstance(value, ast.Constant) and isinstance(value.value, str)):
                    code = value.value
            bases = [b for b in (_name(base) for base in node.bases) if b]
            classes[node.name] = (f"{where}:{node.lineno}", bases, code)
    errors: dict[str, tuple[str, str | None]] = {}
    grew = True
    while grew:
        grew = False
        for name, (where, bases, code) in classes.items():
            if name not in errors and (name == BASE or any(b in errors for b in bases)):
                errors[name] = (where, code)
                grew = True
    return errors


def raised_codes(roots: list[Path]) -> tuple[dict[str, list[str]], list[str]]:
    """(code -> where it is raised or declared, places whose `code=` is not a literal)."""
    modules = _parse(roots)
    classes = _error_classes(modules)
    codes: dict[str, list[str]] = {}
    opaque: list[str] = []
    for name, (where, code) in classes.items():
        if code is not None:
            codes.setdefault(code, []).append(f"{where} ({name}.code)")
    for where, module in modules:
        raised = {id(node.exc) for node in ast.walk(module)
                  if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)}
        built = [node for node in ast.walk(module) if isinstance(node, ast.Call)
                 and (id(node) in raised or _name(node.func) in classes)]
        for call in built:
            for keyword in call.keywords:
                if keyword.arg != "code":
                    continue
                place = f"{where}:{call.lineno}"
                if isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str):
                    codes.setdefault(keyword.value.value, []).append(place)
                else:
                    opaque.append(place)
    return codes, opaque


def server_codes() -> tuple[dict[str, list[str]], list[str]]:
    return raised_codes([ROOT / package for package in SERVER_PACKAGES])


def test_every_raised_code_has_a_status() -> None:
    codes, _ = server_codes()
    missing = {code: places for code, places in codes.items() if code not in STATUS_BY_CODE}
    assert not missing, f"codes raised without a row in api.errors.STATUS_BY_CODE: {missing}"


def test_the_table_has_no_code_nobody_raises() -> None:
    codes, _ = server_codes()
    dead = sorted(set(STATUS_BY_CODE) - set(codes))
    assert not dead, f"rows of api.errors.STATUS_BY_CODE that no server code raises: {dead}"


def test_every_code_is_a_literal_the_table_can_be_checked_against() -> None:
    _, opaque = server_codes()
    assert not opaque, f"`code=` given as an expression (write the code literally): {opaque}"


def test_every_status_is_an_error_status() -> None:
    for code, status in STATUS_BY_CODE.items():
        assert 400 <= status <= 599 and HTTPStatus(status), (code, status)


def test_the_reader_finds_codes_and_misses_nothing_it_should_see(tmp_path: Path) -> None:
    """The collector itself: class codes through indirect subclasses, `code=` in raises and in
    error constructions outside a raise; not `code=` of calls that build no exception."""
    package = tmp_path / "server"
    package.mkdir()
    (package / "errors.py").write_text(
        "class ServiceError(Exception):\n    code = 'internal_error'\n"
        "class NotFound(ServiceError):\n    code = 'not_found'\n"
        "class Gone(NotFound):\n    code: str = 'gone'\n"
        "class Unrelated(Exception):\n    code = 'not_a_server_error'\n"
    )
    (package / "use.py").write_text(
        "from server import errors\n"
        "def f(x):\n"
        "    if x:\n"
        "        raise errors.NotFound('no', code='no_such_thing')\n"
        "    error = Gone('no', code='built_apart')\n"
        "    record_state(x, code='a_job_state_reason')\n"
        "    raise ValueError(code=x)\n"
    )
    codes, opaque = raised_codes([package])
    assert set(codes) == {"internal_error", "not_found", "gone", "no_such_thing", "built_apart"}
    assert opaque == ["server/use.py:7"]


def test_a_code_missing_from_the_table_is_a_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    app = FastAPI()
    install(app)

    @app.get("/listed")
    def listed() -> None:
        raise ServiceError("no such job", code="not_found")

    @app.get("/unlisted")
    def unlisted() -> None:
        raise ServiceError("a code someone forgot to list", code="forgotten_code")

    async def call(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(path)

    import anyio

    listed_response = anyio.run(call, "/listed")
    assert listed_response.status_code == 404 and listed_response.json()["code"] == "not_found"
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        response = anyio.run(call, "/unlisted")
    assert response.status_code == 500
    body = response.json()
    assert (body["status"], body["code"]) == (500, "forgotten_code")
    assert any("forgotten_code" in r.getMessage() and r.levelno == logging.ERROR
               for r in caplog.records)
