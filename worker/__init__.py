"""The worker: claims jobs over HTTP, trains them, reports back. Runs anywhere with the API URL."""

from worker.runner import Worker, WorkerOptions

__all__ = ["Worker", "WorkerOptions"]
