"""The worker's side of the worker protocol, spoken through the generated SDK
(`loraplane_client`, the same package SDK users get); the worker never sees the database.

Bodies are built with the SDK's models and answers parsed by them, so a worker breaks in
the tests as soon as the OpenAPI document stops describing what the server does; the runner
works with those typed models (`Claim`, `LoraSource`, `FileRef`, ...), never with dicts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from attrs import evolve
from loraplane_client import ApiError, AuthenticatedClient, Client
from loraplane_client.api.worker import (
    acknowledge_cancel,
    add_job_checkpoint,
    claim_job,
    complete_job,
    fail_job,
    finish_task,
    heartbeat_job,
    release_job,
    report_job_events,
    upload_job_blob,
)
from loraplane_client.fetch import file_sha256
from loraplane_client.models import (
    AdapterResult,
    CheckpointUpload,
    Claim,
    ClaimRequest,
    FileRef,
    HeartbeatReply,
    Job,
    JobFailure,
    Release,
    Report,
    TaskResult,
    WorkerEvent,
)
from loraplane_client.types import UNSET, File, Response

__all__ = ["LEASE_HEADER", "LeaseLost", "ServerError", "WorkerClient"]

log = logging.getLogger(__name__)
LEASE_HEADER = "X-Loraplane-Lease"


class ServerError(Exception):
    """The server answered with an error the worker cannot act on (the attempt is retried)."""

    def __init__(self, message: str, *, code: str = "server_error"):
        super().__init__(message)
        self.message = message
        self.code = code


class LeaseLost(ServerError):
    """The server no longer holds this worker's lease: nothing it sends is accepted."""

    def __init__(self, message: str):
        super().__init__(message, code="lease_lost")


class WorkerClient:
    """Calls of the worker protocol; a 409 `lease_lost` raises LeaseLost.

    `http` replaces the SDK's own httpx client (tests pass the app's TestClient); `self.http`
    is the httpx client in use, which `BlobCache` downloads inputs with.
    """

    def __init__(self, server: str, token: str | None = None, *, timeout: float = 60.0,
                 http: httpx.Client | None = None, retry_seconds: float = 60.0):
        options: dict[str, Any] = {"base_url": server.rstrip("/"),
                                   "timeout": httpx.Timeout(timeout)}
        self.sdk: AuthenticatedClient | Client = (
            AuthenticatedClient(token=token, **options) if token else Client(**options))
        if http is not None:
            self.sdk.set_httpx_client(http)
        self.http = self.sdk.get_httpx_client()
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self._long_poll: AuthenticatedClient | Client | None = None
        self._long_poll_seconds = 0.0

    def close(self) -> None:
        self.http.close()
        if self._long_poll is not None:
            self._long_poll.get_httpx_client().close()

    def _request(self, what: str, call: Callable[[], Response[Any]]) -> Response[Any]:
        """Send, retrying for up to `retry_seconds` while the server is unreachable or answers
        503 (restarts, brief outages; a 503 is a request that did not get through to its
        database, e.g. one on a connection a database restart cut); a lease that ran out
        meanwhile comes back as LeaseLost."""
        deadline = time.monotonic() + self.retry_seconds
        pause = 0.2
        while True:
            try:
                response = call()
            except httpx.TransportError as exc:
                if time.monotonic() + pause > deadline:
                    raise ServerError(f"{what}: server unreachable ({exc})",
                                      code="server_unreachable") from exc
                reason: object = exc
            else:
                if int(response.status_code) != 503 or time.monotonic() + pause > deadline:
                    return self._check(what, response)
                reason = f"503 {ApiError.from_response(503, response.content).detail}"
            log.warning("%s: %s; retrying in %.1f s", what, reason, pause)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)

    @staticmethod
    def _check(what: str, response: Response[Any]) -> Response[Any]:
        status = int(response.status_code)
        if 200 <= status < 300:
            return response
        error = ApiError.from_response(status, response.content)
        code = str(error.problem.get("code") or "server_error")
        if status == 409 and code == "lease_lost":
            raise LeaseLost(error.detail)
        raise ServerError(f"{what}: {status} {error.detail}", code=code)

    def _long_poll_client(self, seconds: float) -> AuthenticatedClient | Client:
        """The SDK client, or a twin whose reads wait out a long-poll of `seconds`."""
        if seconds <= self.timeout:
            return self.sdk
        if self._long_poll is None or self._long_poll_seconds < seconds:
            self._long_poll = evolve(self.sdk, timeout=httpx.Timeout(seconds))
            self._long_poll_seconds = seconds
        return self._long_poll

    # -- the protocol -------------------------------------------------------------------
    def claim(self, worker_id: str, *, wait_seconds: float, device: str | None,
              devices: int = 1) -> Claim | None:
        """Long-poll for a job that fits `devices` (those the worker offers); None when none
        arrived in time."""
        body = ClaimRequest(worker_id=worker_id, wait_seconds=wait_seconds,
                            device=device if device is not None else UNSET, devices=devices)
        client = self._long_poll_client(wait_seconds + 30)
        response = self._check("claim", claim_job.sync_detailed(client=client, body=body))
        if int(response.status_code) == 204 or response.parsed is None:
            return None
        return response.parsed

    def heartbeat(self, job_id: str, lease: str) -> HeartbeatReply:
        response = heartbeat_job.sync_detailed(job_id, client=self.sdk, x_loraplane_lease=lease)
        return self._check(f"heartbeat {job_id}", response).parsed

    def report(self, job_id: str, lease: str, *, events: list[WorkerEvent],
               step: int | None = None, total: int | None = None,
               metrics: dict[str, Any] | None = None) -> None:
        body = Report.from_dict({"events": [e.to_dict() for e in events], "step": step,
                                 "total": total, "metrics": metrics})
        self._request(f"report {job_id}", lambda: report_job_events.sync_detailed(
            job_id, client=self.sdk, body=body, x_loraplane_lease=lease))

    def fail(self, job_id: str, lease: str, *, code: str, message: str, retryable: bool) -> Job:
        body = JobFailure(code=code, message=message[:10_000], retryable=retryable)
        return self._request(f"fail {job_id}", lambda: fail_job.sync_detailed(
            job_id, client=self.sdk, body=body, x_loraplane_lease=lease)).parsed

    def release(self, job_id: str, lease: str, reason: str) -> Job:
        body = Release(reason=reason)
        return self._request(f"release {job_id}", lambda: release_job.sync_detailed(
            job_id, client=self.sdk, body=body, x_loraplane_lease=lease)).parsed

    def acknowledge_cancel(self, job_id: str, lease: str) -> Job:
        return self._request(f"acknowledge cancel {job_id}", lambda: acknowledge_cancel.sync_detailed(
            job_id, client=self.sdk, x_loraplane_lease=lease)).parsed

    def upload_folder(self, job_id: str, lease: str, folder: Path) -> list[FileRef]:
        """Upload every file under `folder` as a blob; returns what was uploaded."""
        files = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            sha256 = file_sha256(path)
            self._request(f"upload {path.name}", lambda path=path, sha256=sha256: self._upload(
                job_id, lease, path, sha256))
            files.append(FileRef(name=path.relative_to(folder).as_posix(), sha256=sha256,
                                 size=path.stat().st_size))
        return files

    def _upload(self, job_id: str, lease: str, path: Path, sha256: str) -> Response[Any]:
        with path.open("rb") as f:  # streamed, Content-Length from the file's size
            return upload_job_blob.sync_detailed(job_id, sha256, client=self.sdk,
                                                 body=File(payload=f, file_name=path.name),
                                                 x_loraplane_lease=lease)

    def add_checkpoint(self, job_id: str, lease: str, *, step: int, files: list[FileRef]) -> None:
        body = CheckpointUpload(step=step, files=files)
        self._request(f"checkpoint {job_id}", lambda: add_job_checkpoint.sync_detailed(
            job_id, client=self.sdk, body=body, x_loraplane_lease=lease))

    def complete(self, job_id: str, lease: str, result: AdapterResult) -> None:
        self._request(f"complete {job_id}", lambda: complete_job.sync_detailed(
            job_id, client=self.sdk, body=result, x_loraplane_lease=lease))

    def finish_task(self, job_id: str, lease: str, result: TaskResult) -> None:
        """An evaluation's or a sample job's result: stored, and the job succeeds."""
        self._request(f"result {job_id}", lambda: finish_task.sync_detailed(
            job_id, client=self.sdk, body=result, x_loraplane_lease=lease))
