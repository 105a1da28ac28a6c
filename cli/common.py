"""What every client command shares: the connection, output (tables or JSON), exit codes."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from enum import IntEnum
from typing import Annotated, Any, TypeVar

import httpx
import typer
from loraplane_client import ApiError, AuthenticatedClient, ChecksumMismatch, Client, connect
from rich.console import Console
from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])


class Exit(IntEnum):
    """Exit codes that scripts can rely on (also in `loraplane --help`)."""

    OK = 0
    JOB_FAILED = 1  # the job ended failed or cancelled
    USAGE = 2  # bad options or arguments, unreadable file, malformed reference
    NOT_FOUND = 3  # no such job, adapter, alias, dataset or token (404)
    AUTH = 4  # missing, invalid or revoked token, or a role that may not do this (401/403)
    UNREACHABLE = 5  # no answer from the server (connection refused, DNS, timeout)
    REFUSED = 6  # the server refused the request: invalid spec (422), conflict (409), ...
    VERIFY_FAILED = 7  # a download did not match its sha256 or size
    SERVER_ERROR = 8  # the server failed (5xx) or answered something unexpected
    TIMEOUT = 124  # --timeout passed before the job ended
    INTERRUPTED = 130  # Ctrl-C


EXIT_CODES_HELP = (
    "Exit codes: 0 ok · 1 job failed or cancelled · 2 usage error · 3 not found · "
    "4 authentication/permission · 5 server unreachable · 6 request refused (invalid spec, "
    "conflict) · 7 download failed verification · 8 server error · 124 timed out · "
    "130 interrupted."
)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
LimitOption = Annotated[int, typer.Option(min=1, max=500, help="How many (newest first).")]


class Remote:
    """The server and token named by the global options, connected on first use."""

    def __init__(self, server: str | None, token: str | None):
        self.server = server
        self.token = token
        self._client: AuthenticatedClient | Client | None = None

    @property
    def client(self) -> AuthenticatedClient | Client:
        if self._client is None:
            self._client = connect(self.server, self.token)
        return self._client


def remote(ctx: typer.Context) -> Remote:
    """The connection of this invocation (the root callback makes it)."""
    root = ctx.find_root()
    if not isinstance(root.obj, Remote):
        root.obj = Remote(None, None)
    return root.obj


def client(ctx: typer.Context) -> AuthenticatedClient | Client:
    return remote(ctx).client


def fail(code: Exit, message: str) -> typer.Exit:
    """Print `message` to stderr; return the Exit to raise."""
    err.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(int(code))


def _exit_for_status(status: int) -> Exit:
    if status == 404:
        return Exit.NOT_FOUND
    if status in (401, 403):
        return Exit.AUTH
    return Exit.SERVER_ERROR if status >= 500 else Exit.REFUSED


def exit_code_for(exc: BaseException) -> Exit:
    if isinstance(exc, ApiError):
        return _exit_for_status(exc.status)
    if isinstance(exc, httpx.HTTPStatusError):  # from a download
        return _exit_for_status(exc.response.status_code)
    if isinstance(exc, httpx.TransportError):
        return Exit.UNREACHABLE
    if isinstance(exc, ChecksumMismatch):
        return Exit.VERIFY_FAILED
    if isinstance(exc, TimeoutError):
        return Exit.TIMEOUT
    if isinstance(exc, ValueError | OSError):
        return Exit.USAGE
    return Exit.SERVER_ERROR


def describe(exc: BaseException, server: str | None = None) -> str:
    if isinstance(exc, ApiError):
        text = f"{exc.detail} ({exc.status} {exc.code})"
        for item in exc.errors[:5]:
            if item.get("msg") and item.get("msg") not in exc.detail:
                text += f"\n  {item.get('loc')}: {item.get('msg')}"
        if exc.status == 401:
            text += ("\n  pass --token, set LORAPLANE_TOKEN, or run where the server's "
                     "admin.token is (LORAPLANE_DATA_DIR)")
        return text
    if isinstance(exc, httpx.TransportError):
        where = f" at {server}" if server else ""
        return (f"cannot reach the loraplane server{where}: {exc or type(exc).__name__} "
                "(is `loraplane serve` running? see --server / LORAPLANE_SERVER)")
    return str(exc) or type(exc).__name__


def handles_errors(func: F) -> F:
    """Turn the SDK's errors into a message on stderr and a documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            raise typer.Exit(int(Exit.INTERRUPTED)) from None
        except (ApiError, httpx.HTTPError, ChecksumMismatch, TimeoutError, ValueError,
                OSError) as exc:
            ctx = kwargs.get("ctx")
            server = remote(ctx).client.get_httpx_client().base_url if ctx else None
            raise fail(exit_code_for(exc), describe(exc, str(server) if server else None)) \
                from None

    return wrapper  # type: ignore[return-value]


# ------------------------------------------------------------------------------- output


def to_data(value: Any) -> Any:
    """A generated model (or a list of them) as plain JSON data."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """JSON on stdout, exactly (no colour, no wrapping)."""
    sys.stdout.write(json.dumps(to_data(value), indent=2, default=str) + "\n")
    sys.stdout.flush()


def print_json_line(value: Any) -> None:
    sys.stdout.write(json.dumps(to_data(value), default=str) + "\n")
    sys.stdout.flush()


def print_result(value: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """One result: JSON for scripts (--json), else as `render` prints it for people."""
    if as_json:
        print_json(value)
    else:
        render(value)


def print_page(page: Any, as_json: bool, rows: Table,
               cells: Callable[[Any], Sequence[str]]) -> None:
    """A page of a list: its items as JSON (--json), else a table with one row an item and,
    when the page is not the last, a note on stderr."""
    if as_json:
        print_json(page.items)
        return
    for item in page.items:
        rows.add_row(*cells(item))
    out.print(rows)
    if unset(page.next_cursor):
        err.print(f"[dim](more: raise --limit; showing {len(page.items)})[/dim]")


def print_fields(fields: Iterable[tuple[str, str]], *, skip_empty: bool = True) -> None:
    """Name / value pairs as a two-column grid, names in bold; empty values left out
    unless `skip_empty` is false."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in fields:
        if value or not skip_empty:
            grid.add_row(key, value)
    out.print(grid)


def as_dict(value: Any) -> dict[str, Any] | None:
    """A generated model's optional nested object (metrics, …) as a dict; None if absent."""
    value = unset(value)
    return value.to_dict() if value is not None and hasattr(value, "to_dict") else None


def unset(value: Any) -> Any:
    """None for the SDK's UNSET (fields a response left out)."""
    from loraplane_client.types import Unset

    return None if isinstance(value, Unset) else value


def when(value: Any) -> str:
    value = unset(value)
    if not isinstance(value, datetime):
        return "" if value is None else str(value)
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def ago(value: Any) -> str:
    """How long ago, for tables: `42s ago`, `5m ago`, `3h ago`, `2d ago`, else the date."""
    value = unset(value)
    if not isinstance(value, datetime):
        return ""
    seconds = (datetime.now(value.tzinfo) - value).total_seconds()
    for limit, unit, size in ((60, "s", 1), (3600, "m", 60), (86400, "h", 3600),
                              (7 * 86400, "d", 86400)):
        if seconds < limit:
            return f"{max(int(seconds // size), 0)}{unit} ago"
    return value.astimezone().strftime("%Y-%m-%d")


def table(*columns: str, wrap: tuple[str, ...] = ()) -> Table:
    """A borderless table for lists: bold headers, two spaces between columns; only the
    columns in `wrap` may wrap (the others keep ids and numbers whole)."""
    result = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
    for column in columns:
        result.add_column(column, no_wrap=column not in wrap)
    return result


def human_bytes(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def fmt_number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


@contextmanager
def status(message: str, *, enabled: bool = True) -> Iterator[None]:
    """A spinner on stderr while something runs (only on a terminal)."""
    if enabled and err.is_terminal:
        with err.status(message):
            yield
    else:
        yield
