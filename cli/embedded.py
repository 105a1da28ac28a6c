"""`loraplane serve`: uvicorn plus local worker processes that speak the public protocol.

One API process (`EmbeddedServer`), or several on one port (`ApiProcesses`: uvicorn's
multiprocess supervisor, one socket bound by the parent, an API process restarted when it
dies). Either way the local workers start once the API answers and stop before it does: they
hand their jobs back through it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from cli.parent import SERVE_PID, exit_with_parent
from service.settings import Settings

log = logging.getLogger(__name__)

# What an API process of `ApiProcesses` logs at: it is a fresh interpreter (spawn), so `serve`
# hands its --log-level down through the environment.
REPLICA_LOG_LEVEL = "LORAPLANE_SERVE_LOG_LEVEL"
WORKER_STOP_SECONDS = 120.0


def _config(app: FastAPI | str, settings: Settings, log_level: str, **extra: Any) -> uvicorn.Config:
    # Long-polling claims must not hold a shutdown up for their whole wait. httptools and
    # uvloop by name (both dependencies): uvicorn's "auto" would fall back to h11 and asyncio,
    # at about half the requests/s, without a word if one went missing.
    return uvicorn.Config(app, host=settings.host, port=settings.port, log_level=log_level.lower(),
                          http="httptools", loop="uvloop", timeout_graceful_shutdown=5, **extra)


class LocalWorkers:
    """The `settings.workers` worker processes `serve` runs beside its API."""

    def __init__(self, settings: Settings, log_level: str, token: str | None):
        self.settings = settings
        self.log_level = log_level
        self.token = token
        self.procs: list[subprocess.Popen[bytes]] = []

    def command(self, port: int) -> list[str]:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "::", "") else self.settings.host
        return [sys.executable, "-m", "cli.main", "worker", "--server", f"http://{host}:{port}",
                "--log-level", self.log_level]

    def start(self, port: int) -> None:
        env = {**os.environ, "LORAPLANE_DATA_DIR": str(self.settings.data_dir),
               "LORAPLANE_MODELS_DIR": str(self.settings.models_dir),
               SERVE_PID: str(os.getpid())}  # they stop if it is SIGKILLed (cli/parent.py)
        if self.token:
            env["LORAPLANE_WORKER_TOKEN"] = self.token
        for n in range(self.settings.workers):
            self.procs.append(subprocess.Popen(self.command(port),
                                               env={**env, "LORAPLANE_WORKER_INDEX": str(n)}))
        if self.procs:
            log.info("started %d local worker(s)", len(self.procs))

    def stop(self) -> None:
        """SIGTERM each (a worker hands its job back, then exits), SIGKILL what outlives
        WORKER_STOP_SECONDS."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + WORKER_STOP_SECONDS
        for proc in self.procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("worker %s did not stop in time; killing it", proc.pid)
                proc.kill()


class EmbeddedServer(uvicorn.Server):
    """One API process. Starts the workers once the API listens; on a signal, stops them
    first (they hand their jobs back through the still-running API), then the API."""

    def __init__(self, app: FastAPI, settings: Settings, *, log_level: str = "info"):
        super().__init__(_config(app, settings, log_level))
        self.workers = LocalWorkers(settings, log_level, token=None)  # known after the lifespan
        self._stopping = False

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        port = self.servers[0].sockets[0].getsockname()[1] if self.servers else self.config.port
        # fork + exec off the event loop, which is already serving requests
        self.workers.token = self.config.app.state.loraplane.worker_token
        await anyio.to_thread.run_sync(self.workers.start, port)

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self._stopping or not self.workers.procs:
            super().handle_exit(sig, frame)
            return
        self._stopping = True

        def stop_then_exit() -> None:
            self.workers.stop()
            super(EmbeddedServer, self).handle_exit(sig, frame)

        threading.Thread(target=stop_then_exit, daemon=True).start()


def replica_app() -> FastAPI:
    """The app of one API process of `ApiProcesses` (uvicorn's factory, in a fresh
    interpreter): settings from the environment `serve` set, the database already prepared."""
    from api.app import create_app
    from cli.processes import configure_logging

    configure_logging(os.environ.get(REPLICA_LOG_LEVEL, "info"))
    # A group of its own: a Ctrl+C in the terminal (SIGINT to the foreground group) reaches
    # the supervisor, which stops the workers first and then this process, not this process
    # while a worker still hands its job back through it.
    os.setpgid(0, 0)
    exit_with_parent(os.getppid(), "API process")
    return create_app(migrate=False, freeze_gc=True)


def serve_processes(settings: Settings, *, log_level: str) -> None:
    """`serve` with `settings.api_processes` > 1: the database prepared here, once, then the
    API processes and the local workers (`ApiProcesses`)."""
    from api.app import prepare_database
    from api.deps import AppState
    from db.engine import make_engine
    from service.artifacts import open_store

    state = AppState(settings=settings, engine=make_engine(settings.database_url),
                     store=open_store(settings))
    try:
        prepare_database(state)
    finally:
        state.engine.dispose()
    ApiProcesses(settings, log_level=log_level, worker_token=state.worker_token).run()


class ApiProcesses(Multiprocess):
    """`settings.api_processes` API processes on one socket, and the local workers.

    The parent prepares the database once (migrations, bootstrap tokens) before the API
    processes start, each with an app of its own (`replica_app`); uvicorn's supervisor
    restarts one that dies or stops answering its health checks. Prometheus counts go to
    files under `data_dir/metrics` (PROMETHEUS_MULTIPROC_DIR), emptied at each start, so a
    scrape of any process sees the sum of all."""

    def __init__(self, settings: Settings, *, log_level: str, worker_token: str | None):
        metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not metrics_dir:
            metrics_dir = str(settings.data_dir / "metrics")
            shutil.rmtree(metrics_dir, ignore_errors=True)  # counts of an earlier run
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        Path(metrics_dir).mkdir(parents=True, exist_ok=True)
        os.environ[REPLICA_LOG_LEVEL] = log_level
        config = _config("cli.embedded:replica_app", settings, log_level, factory=True,
                         workers=settings.api_processes)
        super().__init__(config, sockets=[config.bind_socket()])
        self.port = self.sockets[0].getsockname()[1]
        self.workers = LocalWorkers(settings, log_level, worker_token)

    def run(self) -> None:
        self.init_processes()
        try:
            if self._wait_until_answering():
                self.workers.start(self.port)
                while not self.should_exit.wait(0.5):
                    self.handle_signals()
                    self.keep_subprocess_alive()
        finally:
            self.workers.stop()  # they hand their jobs back through the still-running API
            self.terminate_all()
            self.join_all()

    def _wait_until_answering(self, timeout: float = 300.0) -> bool:
        """Until one API process answers /healthz (False: told to stop first, or none did)."""
        url = f"http://127.0.0.1:{self.port}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.should_exit.wait(0.2):
            self.handle_signals()
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            if not any(p.process.is_alive() for p in self.processes):
                log.error("every API process exited before answering")
                return False
        return False
