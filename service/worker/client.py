"""The worker's side of the worker protocol, over plain HTTP (it never sees the database)."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from service.errors import LeaseLost, ServiceError

log = logging.getLogger(__name__)
LEASE_HEADER = "X-Loraplane-Lease"


class ServerError(ServiceError):
    """The server answered with an error the worker cannot act on."""

    code = "server_error"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        yield from iter(lambda: f.read(1 << 20), b"")


class WorkerClient:
    """Calls of the worker protocol; a 409 `lease_lost` raises LeaseLost."""

    def __init__(self, server: str, token: str | None = None, *, timeout: float = 60.0,
                 http: httpx.Client | None = None, retry_seconds: float = 60.0):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = http or httpx.Client(base_url=server.rstrip("/"), headers=headers,
                                         timeout=timeout)
        self.retry_seconds = retry_seconds

    def _request(self, method: str, path: str, *,
                 content: Callable[[], Iterator[bytes]] | None = None, **kwargs: Any) -> httpx.Response:
        """Send, retrying while the server is unreachable (restarts, brief outages) for up to
        `retry_seconds`; a lease that ran out meanwhile comes back as LeaseLost."""
        deadline = time.monotonic() + self.retry_seconds
        pause = 0.2
        while True:
            try:
                if content is not None:
                    kwargs["content"] = content()
                return self._check(self.http.request(method, path, **kwargs))
            except httpx.TransportError as exc:
                if time.monotonic() + pause > deadline:
                    raise ServerError(f"{method} {path}: server unreachable ({exc})",
                                      code="server_unreachable") from exc
                log.warning("%s %s: %s; retrying in %.1f s", method, path, exc, pause)
                time.sleep(pause)
                pause = min(pause * 2, 5.0)

    def close(self) -> None:
        self.http.close()

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        try:
            problem = response.json()
        except ValueError:
            problem = {"detail": response.text[:500]}
        detail = problem.get("detail", "") if isinstance(problem, dict) else str(problem)
        if response.status_code == 409 and problem.get("code") == "lease_lost":
            raise LeaseLost(detail)
        raise ServerError(f"{response.request.method} {response.request.url.path}: "
                          f"{response.status_code} {detail}", code=problem.get("code", "server_error"))

    def claim(self, worker_id: str, *, wait_seconds: float, device: str | None) -> dict | None:
        """Long-poll for a job; None when none arrived in time."""
        response = self.http.post(
            "/worker/claim",
            json={"worker_id": worker_id, "wait_seconds": wait_seconds, "device": device},
            timeout=wait_seconds + 30,
        )
        if response.status_code == 204:
            return None
        return self._check(response).json()

    def heartbeat(self, job_id: str, lease: str) -> dict:
        return self._check(self.http.post(f"/worker/jobs/{job_id}/heartbeat",
                                          headers={LEASE_HEADER: lease})).json()

    def _post(self, job_id: str, lease: str, action: str, body: Any = None) -> httpx.Response:
        return self._request("POST", f"/worker/jobs/{job_id}/{action}", json=body,
                             headers={LEASE_HEADER: lease})

    def report(self, job_id: str, lease: str, *, events: list[dict[str, Any]],
               step: int | None = None, total: int | None = None,
               metrics: dict[str, Any] | None = None) -> None:
        body = {"events": events, "step": step, "total": total, "metrics": metrics}
        self._post(job_id, lease, "events", body)

    def fail(self, job_id: str, lease: str, *, code: str, message: str, retryable: bool) -> dict:
        body = {"code": code, "message": message[:10_000], "retryable": retryable}
        return self._post(job_id, lease, "fail", body).json()

    def release(self, job_id: str, lease: str, reason: str) -> dict:
        return self._post(job_id, lease, "release", {"reason": reason}).json()

    def acknowledge_cancel(self, job_id: str, lease: str) -> dict:
        return self._post(job_id, lease, "cancelled").json()

    def upload_folder(self, job_id: str, lease: str, folder: Path) -> list[dict[str, Any]]:
        """Upload every file under `folder` as a blob; returns [{name, sha256, size}]."""
        files = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            sha256 = file_sha256(path)
            size = path.stat().st_size
            self._request(
                "PUT", f"/worker/jobs/{job_id}/blobs/{sha256}",
                content=lambda path=path: _chunks(path),
                headers={LEASE_HEADER: lease, "Content-Type": "application/octet-stream",
                         "Content-Length": str(size)},
            )
            files.append({"name": path.relative_to(folder).as_posix(), "sha256": sha256,
                          "size": size})
        return files

    def add_checkpoint(self, job_id: str, lease: str, *, step: int,
                       files: list[dict[str, Any]]) -> dict:
        return self._post(job_id, lease, "checkpoints", {"step": step, "files": files}).json()

    def complete(self, job_id: str, lease: str, result: dict[str, Any]) -> dict:
        return self._post(job_id, lease, "complete", result).json()

    def get(self, path: str) -> dict:
        return self._request("GET", path).json()
