"""The OpenAPI document and the SDK generated from it stay in step with the app.

`openapi.json` (committed) must be exactly what the app serves, and the committed SDK in
clients/python exactly what the pinned generator makes of that file; either drifting fails
here with the fix: run `make sdk`.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests import REPO

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
PUBLIC = {"healthz", "readyz"}  # the only operations that need no token


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def document() -> dict:
    return _script("export_openapi").openapi_document()


def _operations(document: dict) -> list[tuple[str, str, dict]]:
    return [(method, path, op) for path, item in document["paths"].items()
            for method, op in item.items() if method in HTTP_METHODS]


def test_committed_openapi_json_matches_the_app(document: dict) -> None:
    export = _script("export_openapi")
    committed = (REPO / "openapi.json").read_text()
    assert committed == export.render(document), (
        "openapi.json is out of date with create_app().openapi(): run `make sdk` "
        "(scripts/export_openapi.py, then scripts/generate_sdk.py) and commit the result")


def test_export_is_deterministic(document: dict) -> None:
    export = _script("export_openapi")
    again = export.openapi_document()
    assert export.render(again) == export.render(document)
    assert document["info"]["version"] == "0.1.0"


def test_operation_ids_are_unique_snake_case_and_tagged(document: dict) -> None:
    seen: dict[str, str] = {}
    for method, path, op in _operations(document):
        where = f"{method.upper()} {path}"
        op_id = op.get("operationId", "")
        assert re.fullmatch(r"[a-z]+(_[a-z0-9]+)*", op_id), f"{where}: operationId {op_id!r}"
        assert op_id not in seen, f"{where} and {seen[op_id]} share operationId {op_id}"
        seen[op_id] = where
        assert len(op.get("tags", [])) == 1, f"{where}: one tag (the SDK's module) expected"
        assert op.get("summary"), f"{where}: no summary"
    # The names SDK users and the worker call: renaming one breaks them.
    for stable in ("submit_job", "get_job", "list_jobs", "cancel_job", "list_job_events",
                   "list_adapters", "get_adapter", "download_adapter_file", "get_alias",
                   "upload_dataset", "create_token", "claim_job", "heartbeat_job",
                   "upload_job_blob", "complete_job"):
        assert stable in seen, f"operation {stable} disappeared"


def test_every_error_response_is_documented_as_a_problem(document: dict) -> None:
    for method, path, op in _operations(document):
        where = f"{method.upper()} {path}"
        responses = op["responses"]
        if op["operationId"] not in PUBLIC:
            assert {"401", "403"} <= responses.keys(), f"{where}: 401/403 undocumented"
        for status, response in responses.items():
            assert response.get("description"), f"{where} {status}: no description"
            if status.startswith(("4", "5")):
                schemas = [c.get("schema", {}).get("$ref", "")
                           for c in (response.get("content") or {}).values()]
                assert any(s.endswith("/Problem") for s in schemas), \
                    f"{where} {status}: the body is not documented as a Problem"


def test_job_spec_is_typed_in_jobs(document: dict) -> None:
    job = document["components"]["schemas"]["Job"]
    assert job["properties"]["spec"]["$ref"] == "#/components/schemas/JobSpec"


def test_committed_sdk_matches_the_generator_output(tmp_path: Path) -> None:
    generate = _script("generate_sdk")
    fresh = generate.generate(tmp_path)
    stale = generate.differences(fresh)
    assert not stale, (f"clients/python/loraplane_client is out of date with openapi.json "
                       f"({', '.join(stale[:8])}): run `make sdk` and commit the result")
    package = REPO / "clients" / "python" / "loraplane_client"
    for name in generate.HANDWRITTEN:
        assert (package / name).is_file(), f"hand-written {name} missing"
        assert not (fresh / name).exists(), f"the generator now writes {name}"


def test_client_package_needs_no_server_dependencies() -> None:
    """The SDK installs and imports without torch, sqlalchemy, fastapi or the server code."""
    project = (REPO / "clients" / "python" / "pyproject.toml").read_text()
    import tomllib

    deps = tomllib.loads(project)["project"]["dependencies"]
    assert sorted(re.split(r"[<>=!~ ]", d)[0] for d in deps) == ["attrs", "httpx"]
    blocked = ["torch", "sqlalchemy", "fastapi", "pydantic", "peft", "transformers", "yaml",
               "api", "service", "db", "cli"]
    code = f"""
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError("the SDK must not import " + name)
sys.meta_path.insert(0, Block())
import loraplane_client
for info in pkgutil.walk_packages(loraplane_client.__path__, "loraplane_client."):
    importlib.import_module(info.name)
print("ok", len(sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO / "clients", check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
    assert json.loads((REPO / "openapi.json").read_text())["info"]["title"] == "loraplane"
