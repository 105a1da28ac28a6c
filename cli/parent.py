"""A child of `loraplane serve` (an API process, a local worker) stops once `serve` is gone.

`serve` stopped gracefully stops its children itself; SIGKILLed (or crashed), it cannot, and
an orphan would go on holding the port (an API process) or polling for jobs (a local worker,
beside the fresh set a restarted `serve` starts).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

log = logging.getLogger(__name__)

# Set by `serve` for its local workers: its own pid, the parent they must not outlive.
SERVE_PID = "LORAPLANE_SERVE_PID"


def exit_with_parent(parent: int, what: str) -> None:
    """SIGTERM this process (its graceful stop) once `parent` is no longer its parent."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        log.warning("the serve process %d is gone; this %s stops", parent, what)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="watch-serve", daemon=True).start()


def exit_with_serve() -> None:
    """In a local worker started by `serve` (SERVE_PID set): stop when `serve` is gone."""
    pid = os.environ.get(SERVE_PID, "")
    if pid.isdigit():
        exit_with_parent(int(pid), "local worker")
