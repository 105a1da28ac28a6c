"""`loraplane serve`: uvicorn plus local worker processes that speak the public protocol."""

from __future__ import annotations

import functools
import gc
import logging
import os
import subprocess
import sys
import threading
import time
from typing import Any

import anyio
import uvicorn
from fastapi import FastAPI

from service.settings import Settings

log = logging.getLogger(__name__)


class EmbeddedServer(uvicorn.Server):
    """Starts N workers once the API listens; on a signal, stops them first (they hand their
    jobs back through the still-running API), then the API."""

    def __init__(self, app: FastAPI, settings: Settings, *, log_level: str = "info"):
        # Long-polling claims must not hold a shutdown up for their whole wait.
        super().__init__(uvicorn.Config(app, host=settings.host, port=settings.port,
                                        log_level=log_level.lower(),
                                        timeout_graceful_shutdown=5))
        self.settings = settings
        self.log_level = log_level
        self.workers: list[subprocess.Popen[bytes]] = []
        self._stopping = False

    def worker_command(self) -> list[str]:
        port = self.servers[0].sockets[0].getsockname()[1] if self.servers else self.settings.port
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "::", "") else self.settings.host
        return [sys.executable, "-m", "cli.main", "worker", "--server", f"http://{host}:{port}",
                "--log-level", self.log_level]

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        # What start-up built (modules, routes, settings, the app) lives as long as the
        # process: out of the collector's way, so the full collections of a busy API stay
        # short (BENCHMARKS.md section 5: p99 of GET /adapters/{id}).
        gc.collect()
        gc.freeze()
        env = {**os.environ, "LORAPLANE_DATA_DIR": str(self.settings.data_dir),
               "LORAPLANE_MODELS_DIR": str(self.settings.models_dir)}
        token = self.config.app.state.loraplane.worker_token
        if token:
            env["LORAPLANE_WORKER_TOKEN"] = token
        command = self.worker_command()
        for n in range(self.settings.workers):
            worker_env = {**env, "LORAPLANE_WORKER_INDEX": str(n)}
            # fork + exec off the event loop, which is already serving requests
            self.workers.append(await anyio.to_thread.run_sync(
                functools.partial(subprocess.Popen, command, env=worker_env)))
        if self.workers:
            log.info("started %d local worker(s)", len(self.workers))

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self._stopping or not self.workers:
            super().handle_exit(sig, frame)
            return
        self._stopping = True
        threading.Thread(target=self._stop_workers_then_exit, args=(sig, frame), daemon=True).start()

    def _stop_workers_then_exit(self, sig: int, frame: Any) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 120
        for proc in self.workers:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("worker %s did not stop in time; killing it", proc.pid)
                proc.kill()
        super().handle_exit(sig, frame)
