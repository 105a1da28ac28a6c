"""The one direction of calls (docs/architecture.md): api -> service -> db, and the worker
speaks to the server through the SDK only. Read from every import statement, including the
ones inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests import REPO

ROOT = REPO
PROCESS_COMMANDS = {"cli/processes.py", "cli/embedded.py"}  # compose server and worker

# package (or file) -> top-level packages it must never import
FORBIDDEN = {
    "worker": {"api", "service", "db", "cli"},
    "service": {"api", "worker", "cli"},
    "db": {"api", "service", "worker", "cli"},
    "api": {"worker", "cli"},
    "cli": {"api", "service", "db", "worker"},  # but PROCESS_COMMANDS
}


def imported_packages(path: Path) -> set[str]:
    """Top-level names that a file imports, anywhere in it."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def violations(package: str) -> dict[str, set[str]]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        if where in PROCESS_COMMANDS:
            continue
        bad = imported_packages(path) & FORBIDDEN[package]
        if bad:
            found[where] = bad
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_follow_the_direction_of_calls(package: str) -> None:
    assert violations(package) == {}


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from service.settings import Settings\n    import db.engine\n")
    assert imported_packages(sample) == {"service", "db"}


def test_the_worker_speaks_the_sdk() -> None:
    users = [p for p in (ROOT / "worker").rglob("*.py") if "loraplane_client" in imported_packages(p)]
    assert {p.name for p in users} >= {"client.py", "runner.py"}
