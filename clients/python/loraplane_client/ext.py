"""The hand-written layer of the SDK: only what generation from OpenAPI cannot give.

- `connect()`: a client for the server and token found in arguments or the environment.
- `ok()`: the parsed body of a generated call, or `ApiError` with the problem details.
- `submit_spec()`: submit a spec as a dict (JSON), YAML text, or a `.yaml`/`.json` file.
- `wait_for_job()` and `follow_events()`: watch a job by polling, or live (SSE).
- `resolve_adapter()` and `download_adapter()`: every adapter reference form, and a
  resumable download of a PEFT folder in which every file's sha256 is verified.

Everything else is the generated API: `loraplane_client.api.<tag>.<operation_id>` with the
models in `loraplane_client.models`. This module is not touched by `make sdk`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from .api.adapters import get_adapter, list_adapters
from .api.aliases import get_alias
from .api.jobs import get_job
from .client import AuthenticatedClient, Client
from .fetch import ChecksumMismatch, Progress, download_file, file_sha256
from .models.adapter import Adapter
from .models.job import Job
from .models.job_event import JobEvent
from .models.job_spec import JobSpec
from .types import Response

__all__ = [
    "DEFAULT_SERVER",
    "TERMINAL_STATES",
    "ApiError",
    "ChecksumMismatch",
    "connect",
    "download_adapter",
    "follow_events",
    "ok",
    "resolve_adapter",
    "submit_spec",
    "token_from_environment",
    "wait_for_job",
]

log = logging.getLogger(__name__)

DEFAULT_SERVER = "http://127.0.0.1:8000"
TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
ADMIN_TOKEN_FILE = "admin.token"
AnyClient = AuthenticatedClient | Client

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_NAME_VERSION = re.compile(rf"({_NAME}):([0-9]{{1,9}})")
_NAME_ALIAS = re.compile(rf"({_NAME})@({_NAME})")
_ADAPTER_ID = re.compile(r"ad_[0-9a-z]{26}")


class ApiError(Exception):
    """The server refused a request; `status`, `code` and `detail` come from its problem
    details (RFC 9457), the whole body is in `problem`."""

    def __init__(self, status: int, code: str, detail: str, problem: dict[str, Any] | None = None):
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.problem = problem or {}

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Field-level problems (`loc`, `msg`, `type`), where the server named them."""
        return list(self.problem.get("errors") or [])

    @classmethod
    def from_response(cls, status: int, content: bytes) -> ApiError:
        try:
            problem = json.loads(content)
        except ValueError:
            problem = None
        if not isinstance(problem, dict):
            text = content.decode(errors="replace").strip()[:500]
            return cls(status, f"http_{status}", text or f"HTTP {status}")
        return cls(status, str(problem.get("code") or f"http_{status}"),
                   str(problem.get("detail") or problem.get("title") or ""), problem)


def token_from_environment(data_dir: str | os.PathLike[str] | None = None) -> str | None:
    """`LORAPLANE_TOKEN`, else `LORAPLANE_ADMIN_TOKEN` (set where the server runs), else the
    bootstrap admin token file `<data_dir or LORAPLANE_DATA_DIR or ./.loraplane>/admin.token`."""
    for name in ("LORAPLANE_TOKEN", "LORAPLANE_ADMIN_TOKEN"):
        if value := os.environ.get(name, "").strip():
            return value
    folder = Path(data_dir or os.environ.get("LORAPLANE_DATA_DIR") or ".loraplane")
    try:
        return (folder.expanduser() / ADMIN_TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None


def connect(
    url: str | None = None,
    token: str | None = None,
    *,
    timeout: float = 30.0,
    data_dir: str | os.PathLike[str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> AnyClient:
    """A client for `url` (else `LORAPLANE_SERVER`, else http://127.0.0.1:8000), authenticated
    with `token` (else `token_from_environment(data_dir)`); unauthenticated if none is found."""
    base_url = (url or os.environ.get("LORAPLANE_SERVER") or DEFAULT_SERVER).rstrip("/")
    token = token or token_from_environment(data_dir)
    options: dict[str, Any] = {"base_url": base_url, "timeout": httpx.Timeout(timeout),
                               "headers": dict(headers or {})}
    if token:
        return AuthenticatedClient(token=token, **options)
    return Client(**options)


def ok(response: Response[Any]) -> Any:
    """The parsed body of a 2xx answer to a generated `*_detailed` call; else `ApiError`."""
    status = int(response.status_code)
    if 200 <= status < 300:
        return response.parsed
    raise ApiError.from_response(status, response.content)


def _check(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    response.read()
    raise ApiError.from_response(response.status_code, response.content)


# --------------------------------------------------------------------------- submitting

_YAML = "application/yaml"


def submit_spec(
    client: AnyClient,
    spec: JobSpec | Mapping[str, Any] | str | bytes | os.PathLike[str],
    *,
    idempotency_key: str | None = None,
) -> Job:
    """Submit a job spec: a `JobSpec` or a mapping (sent as JSON), YAML text (`str`/`bytes`),
    or a file path (`.json` as JSON, anything else as YAML). Returns the queued job;
    the server's refusal (an invalid spec: 422, naming the field) raises `ApiError`."""
    if isinstance(spec, JobSpec):
        spec = spec.to_dict()
    if isinstance(spec, os.PathLike):
        path = Path(spec)
        body = path.read_bytes()
        media = "application/json" if path.suffix.lower() == ".json" else _YAML
    elif isinstance(spec, Mapping):
        body, media = json.dumps(spec).encode(), "application/json"
    elif isinstance(spec, str | bytes):
        body, media = (spec.encode() if isinstance(spec, str) else spec), _YAML
    else:
        raise TypeError(f"a spec is a JobSpec, a mapping, YAML text or a path, not {type(spec)}")
    headers = {"Content-Type": media}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    response = _check(client.get_httpx_client().post("/jobs", content=body, headers=headers))
    return Job.from_dict(response.json())


# ------------------------------------------------------------------------ watching jobs


def _state(job: Job) -> str:
    return str(job.state)


def wait_for_job(
    client: AnyClient,
    job_id: str,
    timeout: float | None = None,
    on_progress: Callable[[Job], None] | None = None,
    *,
    poll_interval: float = 0.5,
    retry_seconds: float = 60.0,
) -> Job:
    """Poll a job until it ends (succeeded, failed or cancelled) and return it.

    `on_progress(job)` is called whenever its state, step or metrics change. A server that
    is briefly unreachable (a restart) is retried for up to `retry_seconds`; past `timeout`
    seconds, `TimeoutError`. The job's outcome is the caller's to judge: a failed job is
    returned, not raised.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    seen: Any = None
    unreachable_since: float | None = None
    while True:
        try:
            job: Job = ok(get_job.sync_detailed(job_id, client=client))
            unreachable_since = None
        except httpx.TransportError:
            now = time.monotonic()
            unreachable_since = unreachable_since or now
            if now - unreachable_since > retry_seconds:
                raise
            log.warning("server unreachable while waiting for %s; retrying", job_id)
        else:
            key = (_state(job), job.progress.step, job.progress.total,
                   json.dumps(_metrics(job), sort_keys=True, default=str))
            if key != seen:
                seen = key
                if on_progress is not None:
                    on_progress(job)
            if _state(job) in TERMINAL_STATES:
                return job
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} has not ended after {timeout} s")
        time.sleep(poll_interval)


def _metrics(job: Job) -> dict[str, Any]:
    metrics = job.metrics
    return metrics.to_dict() if hasattr(metrics, "to_dict") else {}


def follow_events(
    client: AnyClient,
    job_id: str,
    *,
    after: int | None = None,
    timeout: float | None = None,
    retry_seconds: float = 60.0,
) -> Iterator[JobEvent]:
    """Yield a job's events live (`Accept: text/event-stream`) until the job has ended.

    Starts after event id `after` (None: from the first). If the stream breaks (a server
    restart), it reconnects with `Last-Event-ID` for up to `retry_seconds`, so no event is
    lost or repeated. Past `timeout` seconds, `TimeoutError` (checked at least every 15 s,
    the server's keep-alive). Errors such as an unknown job raise `ApiError`.
    """
    last = after
    http = client.get_httpx_client()
    broken_since: float | None = None
    deadline = None if timeout is None else time.monotonic() + timeout

    def check_deadline() -> None:
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} has not ended after {timeout} s")

    while True:
        check_deadline()
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last is not None:
            headers["Last-Event-ID"] = str(last)
        # Reads wait up to a minute: the server sends a keep-alive comment every 15 s.
        read = 60.0 if deadline is None else max(min(60.0, deadline - time.monotonic()), 0.1)
        try:
            with http.stream("GET", f"/jobs/{quote(job_id, safe='')}/events", headers=headers,
                             timeout=httpx.Timeout(30.0, read=read)) as response:
                _check(response)
                broken_since = None
                for kind, event_id, data in _sse(response.iter_lines(), check_deadline):
                    if kind == "end":
                        return
                    event = JobEvent.from_dict(json.loads(data))
                    last = event.id if event_id is None else int(event_id)
                    yield event
        except httpx.TransportError:
            check_deadline()
            now = time.monotonic()
            broken_since = broken_since or now
            if now - broken_since > retry_seconds:
                raise
            log.warning("event stream of %s broke; reconnecting", job_id)
            time.sleep(0.5)
            continue
        # The stream closed without `end`: the server went away between events. Resume.
        broken_since = broken_since or time.monotonic()
        if time.monotonic() - broken_since > retry_seconds:
            raise ConnectionError(f"the event stream of {job_id} keeps closing early")
        time.sleep(0.5)


def _sse(lines: Iterator[str], tick: Callable[[], None] = lambda: None,
         ) -> Iterator[tuple[str, str | None, str]]:
    """(event, id, data) for each server-sent event; comments and keep-alives skipped
    (`tick()` runs on every line, keep-alives included)."""
    kind, event_id, data = "message", None, []
    for line in lines:
        tick()
        if not line:
            if data:
                yield kind, event_id, "\n".join(data)
            elif kind == "end":
                yield kind, event_id, ""
            kind, event_id, data = "message", None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            kind = value
        elif field == "id":
            event_id = value
        elif field == "data":
            data.append(value)


# ------------------------------------------------------------------------------ adapters


def resolve_adapter(client: AnyClient, ref: str) -> Adapter:
    """The adapter `ref` names: an id (`ad_…`), `name:version`, `name@alias`, a bare name (its
    newest version, `name@latest`), or the adapter's URL (its `lora_path`). An unknown
    adapter raises `ApiError` (404); a string of no such form, `ValueError`."""
    ref = ref.strip()
    if re.match(r"https?://", ref):
        segments = [unquote(s) for s in urlsplit(ref).path.rstrip("/").split("/")]
        if len(segments) >= 2 and segments[-2] == "adapters":
            ref = segments[-1]
        else:
            raise ValueError(f"{ref!r} is not an adapter URL (…/adapters/ad_…)")
    if _ADAPTER_ID.fullmatch(ref):  # a name may start with `ad_` too
        return ok(get_adapter.sync_detailed(ref, client=client))
    if m := _NAME_ALIAS.fullmatch(ref):
        alias = ok(get_alias.sync_detailed(m.group(1), m.group(2), client=client))
        return ok(get_adapter.sync_detailed(alias.adapter_id, client=client))
    if m := _NAME_VERSION.fullmatch(ref):
        name, version = m.group(1), int(m.group(2))
        cursor: str | None = None
        while True:
            page = ok(list_adapters.sync_detailed(client=client, name=name, limit=500,
                                                  cursor=cursor))
            for adapter in page.items:
                if adapter.name == name and adapter.version == version:
                    return adapter
            cursor = page.next_cursor if isinstance(page.next_cursor, str) else None
            if not cursor:
                raise ApiError(404, "not_found", f"no adapter {name!r} version {version}")
    if re.fullmatch(_NAME, ref):
        return resolve_adapter(client, f"{ref}@latest")
    raise ValueError(f"{ref!r} is not an adapter reference: use an id (ad_…), name:version, "
                     "name@alias, a name (its newest version) or the adapter's URL")


def download_adapter(
    client: AnyClient,
    adapter_id_or_ref: str | Adapter,
    dest: str | os.PathLike[str],
    progress: Progress | None = None,
) -> Path:
    """Download every file of an adapter into the folder `dest`; return the folder.

    Each file is fetched with `Range` from where an interrupted earlier call stopped (its
    `NAME.part`), checked against the registry's size and sha256, and only then renamed into
    place; files already there and intact are kept. A mismatch deletes the bad bytes and
    raises `ChecksumMismatch`. `progress(done, total)` counts bytes over all files. The folder
    is a plain PEFT folder: `PeftModel.from_pretrained(base, dest)` loads it.
    """
    adapter = (adapter_id_or_ref if isinstance(adapter_id_or_ref, Adapter)
               else resolve_adapter(client, adapter_id_or_ref))
    folder = Path(dest)
    folder.mkdir(parents=True, exist_ok=True)
    files = sorted(adapter.files, key=lambda f: f.name)
    total = sum(f.size for f in files)
    done = 0
    http = client.get_httpx_client()
    if progress:
        progress(0, total)
    for ref in files:
        target = folder.joinpath(*_safe_parts(ref.name))
        if not (target.is_file() and target.stat().st_size == ref.size
                and file_sha256(target) == ref.sha256):
            url = f"/adapters/{quote(adapter.id, safe='')}/files/{quote(ref.name, safe='/')}"
            offset = done
            file_progress = (None if progress is None
                             else lambda d, _t, offset=offset: progress(offset + d, total))
            download_file(http, url, target, sha256=ref.sha256, size=ref.size,
                          progress=file_progress)
        done += ref.size
        if progress:
            progress(done, total)
    return folder


def _safe_parts(name: str) -> tuple[str, ...]:
    """A registry file name as path parts inside the folder (never `..` or absolute)."""
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"refusing the file name {name!r}: not a plain relative path")
    return parts
