"""Real processes for end-to-end tests: `loraplane serve` and `loraplane worker` on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx
import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(data_dir: Path, extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAPLANE_")}
    env["LORAPLANE_DATA_DIR"] = str(data_dir)
    env.update(extra or {})
    return env


class LiveServer:
    """`loraplane serve` in a subprocess; `url` is ready once `start()` returns."""

    def __init__(self, data_dir: Path, database_url: str, *, workers: int = 0,
                 env: dict[str, str] | None = None, port: int | None = None):
        self.data_dir = data_dir
        self.database_url = database_url
        self.workers = workers
        self.env = env or {}
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"serve-{self.port}.log"

    def start(self, timeout: float = 90) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "cli.main", "serve", "--port", str(self.port),
               "--database-url", self.database_url, "--workers", str(self.workers),
               "--log-level", "warning"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, env=_env(self.data_dir, self.env), stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_ready(self.url, timeout, self.proc, self.log)
        except BaseException:
            self.kill()  # never leave a half-started server behind
            raise
        self.admin_token = (self.env.get("LORAPLANE_ADMIN_TOKEN")
                            or (self.data_dir / "admin.token").read_text().strip())
        self.worker_token = (self.env.get("LORAPLANE_WORKER_TOKEN")
                             or (self.data_dir / "worker.token").read_text().strip())
        return self

    def client(self, **kwargs) -> httpx.Client:
        """An httpx client for this server, authenticated with the bootstrap admin token."""
        headers = {"Authorization": f"Bearer {self.admin_token}", **kwargs.pop("headers", {})}
        return httpx.Client(base_url=self.url, timeout=30, headers=headers, **kwargs)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """SIGKILL the server and every process it started: its local workers (its process
        group) and its API processes (`--api-processes`: groups of their own)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                descendants = psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                descendants = []
            os.killpg(self.proc.pid, signal.SIGKILL)
            for child in descendants:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
            self.proc.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.kill()


class LiveWorker:
    """`loraplane worker` in a subprocess against a live server, with its worker token."""

    def __init__(self, server: LiveServer, data_dir: Path, *, env: dict[str, str] | None = None,
                 args: list[str] | None = None):
        self.server_url = server.url
        self.data_dir = data_dir
        self.env = env or {}
        self.args = args or []  # more `loraplane worker` options (e.g. --cpu-ranks 2)
        self.token = server.worker_token
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LiveWorker:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "cli.main", "worker", "--server", self.server_url,
               "--device", "cpu", "--work-dir", str(self.data_dir / "work"),
               "--log-level", "warning"]
        if self.token:
            cmd += ["--token", self.token]
        cmd += self.args
        log = (self.data_dir / "worker.log").open("ab")
        self.proc = subprocess.Popen(cmd, env=_env(self.data_dir, self.env), stdout=log,
                                     stderr=subprocess.STDOUT)
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 120) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_ready(url: str, timeout: float, proc: subprocess.Popen | None = None,
               log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            text = log.read_text()[-3000:] if log else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{text}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout} s")


def wait_for_job(client: httpx.Client, job_id: str, states: set[str], timeout: float = 180) -> dict:
    """Poll a job until it reaches one of `states`."""
    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} still {job.get('state')} after {timeout} s: {job}")


def serve_children(server: LiveServer) -> list[tuple[psutil.Process, list[str]]]:
    """`serve`'s live children and their command lines; a child killed but not yet reaped
    (a zombie) or gone meanwhile is left out."""
    found = []
    for child in psutil.Process(server.proc.pid).children():
        try:
            found.append((child, child.cmdline()))
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return found


def api_processes(server: LiveServer) -> list[psutil.Process]:
    """The API processes of `serve --api-processes N` (uvicorn's spawned children)."""
    return [p for p, cmdline in serve_children(server)
            if "multiprocessing.spawn" in " ".join(cmdline)]


def local_workers(server: LiveServer) -> list[psutil.Process]:
    """The local workers `serve` started (`loraplane worker` children)."""
    return [p for p, cmdline in serve_children(server) if "worker" in cmdline]


def wait_until(predicate, timeout: float, what: str):
    """Poll `predicate` until it returns something true (returned); TimeoutError naming
    `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := predicate()):
            return value
        time.sleep(0.2)
    raise TimeoutError(what)
