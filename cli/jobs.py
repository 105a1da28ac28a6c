"""`loraplane submit` and `loraplane jobs …`: submit specs, watch, list, cancel, read logs."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Self

import typer
import yaml
from loraplane_client import follow_events, ok, submit_spec, wait_for_job
from loraplane_client.api.adapters import get_adapter
from loraplane_client.api.jobs import cancel_job, get_job, list_job_events, list_jobs
from loraplane_client.models import Adapter, Job, JobEvent, JobState
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cli.common import (
    Exit,
    JsonOption,
    ago,
    client,
    err,
    fmt_number,
    handles_errors,
    out,
    print_json,
    print_json_line,
    table,
    unset,
    when,
)

jobs_app = typer.Typer(help="List, inspect, cancel and follow training jobs.",
                       no_args_is_help=True)


# ------------------------------------------------------------------------------- submit


def _load_spec(spec: str, overrides: list[str]) -> Path | str | bytes:
    """The spec to send: the file as it is, or (with --set) YAML with the overrides applied."""
    raw = sys.stdin.buffer.read() if spec == "-" else None
    if raw is None:
        path = Path(spec)
        if not path.is_file():
            raise typer.BadParameter(f"no such file: {spec}", param_hint="SPEC")
        if not overrides:
            return path
        raw = path.read_bytes()
    if not overrides:
        return raw
    try:
        document = yaml.safe_load(raw) or {}
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"not YAML: {exc}", param_hint="SPEC") from None
    if not isinstance(document, dict):
        raise typer.BadParameter("the spec is not a mapping", param_hint="SPEC")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--set")
        node = document
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise typer.BadParameter(f"{key}: {part} is not a section", param_hint="--set")
        try:
            node[leaf] = yaml.safe_load(value) if value else None
        except yaml.YAMLError:
            node[leaf] = value
    return yaml.safe_dump(document, sort_keys=False)


def submit(
    ctx: typer.Context,
    spec: Annotated[str, typer.Argument(help="Job spec (YAML or JSON file; - for stdin).",
                                        metavar="SPEC", show_default=False)],
    follow: Annotated[bool, typer.Option("--follow", "-f",
                                         help="Show live progress until the job ends; the exit "
                                              "code then tells how it ended.")] = False,
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE",
        help="Override a spec field, e.g. --set actor.model.lora_path=demo-adapter:1 "
             "(repeatable; VALUE is YAML).")] = None,
    idempotency_key: Annotated[str | None, typer.Option(
        help="Make a retried submit return the same job.")] = None,
    timeout: Annotated[float | None, typer.Option(
        help="With --follow: give up waiting after this many seconds (exit 124).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Submit a training job; with --follow, watch it to the end."""
    body = _load_spec(spec, overrides or [])
    job = _submit(ctx, body, idempotency_key)
    if not as_json:
        label = f" ({job.name})" if unset(job.name) else ""
        out.print(f"submitted [bold]{job.id}[/bold]{label}: {job.state}")
        if job.ignored_keys:
            err.print(f"[yellow]ignored keys[/yellow] (not used by loraplane): "
                      f"{', '.join(job.ignored_keys)}")
    if not follow:
        if as_json:
            print_json(job)
        return
    final = _follow(ctx, job, quiet=as_json, timeout=timeout)
    if as_json:
        print_json(final)
    raise typer.Exit(int(_outcome(final)))


@handles_errors
def _submit(ctx: typer.Context, body: Path | str | bytes, key: str | None) -> Job:
    return submit_spec(client(ctx), body, idempotency_key=key)


def _outcome(job: Job) -> Exit:
    return Exit.OK if str(job.state) == "succeeded" else Exit.JOB_FAILED


# ------------------------------------------------------------------------------ follow


class _Bar:
    """A rich progress bar on stderr: step / total, loss, ETA."""

    def __init__(self, job_id: str, enabled: bool):
        self.enabled = enabled
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("•"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            disable=not enabled,
            transient=False,
        )
        self.task = self.progress.add_task(job_id, total=None, loss="–")

    def __enter__(self) -> Self:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def note(self, text: str) -> None:
        if self.enabled:
            self.progress.console.print(text, highlight=False)

    def update(self, step: int | None, total: int | None, loss: Any = None) -> None:
        fields: dict[str, Any] = {}
        if loss is not None:
            fields["loss"] = fmt_number(loss)
        self.progress.update(self.task, completed=step or 0, total=total or None, **fields)


def _follow(ctx: typer.Context, job: Job, *, quiet: bool, timeout: float | None) -> Job:
    """Follow a job's events live with a progress bar; return the job once it has ended."""
    try:
        return _follow_events(ctx, job, quiet=quiet, timeout=timeout)
    except (KeyboardInterrupt, typer.Exit) as stop:
        if isinstance(stop, typer.Exit) and stop.exit_code != Exit.INTERRUPTED:
            raise
        err.print(f"stopped following; {job.id} goes on (`loraplane jobs cancel {job.id}` "
                  "stops it)")
        raise typer.Exit(int(Exit.INTERRUPTED)) from None


def _follow_events(ctx: typer.Context, job: Job, *, quiet: bool, timeout: float | None) -> Job:
    with _Bar(job.id, enabled=not quiet) as bar:
        bar.update(job.progress.step, unset(job.progress.total))
        for event in _events(ctx, job.id, timeout):
            data = _data(event)
            if event.kind == "metrics":
                bar.update(data.get("step"), data.get("total"), data.get("loss"))
            elif event.kind == "state":
                bar.note(f"[bold]{data.get('from') or 'new'} → {data.get('to')}[/bold]"
                         + _state_detail(data))
            elif event.kind in ("log", "checkpoint"):
                bar.note(f"[dim]{_event_text(event)}[/dim]")
        final = _get(ctx, job.id)
        bar.update(final.progress.step, unset(final.progress.total) or final.progress.step,
                   (_metrics(final) or {}).get("loss"))
    if not quiet:
        _print_outcome(final, ctx)
    return final


def _timeout(job_id: str, timeout: float | None) -> typer.Exit:
    err.print(f"[yellow]timed out[/yellow]: job {job_id} has not ended after {timeout} s "
              "(it goes on; `loraplane jobs show` tells how it does)")
    return typer.Exit(int(Exit.TIMEOUT))


def _events(ctx: typer.Context, job_id: str, timeout: float | None) -> Iterator[JobEvent]:
    return _guarded(follow_events(client(ctx), job_id, timeout=timeout), ctx, job_id, timeout)


def _guarded(events: Iterable[JobEvent], ctx: typer.Context, job_id: str,
             timeout: float | None = None) -> Iterator[JobEvent]:
    """Iterate `events`, mapping SDK errors raised mid-stream to exit codes."""
    iterator = iter(events)

    @handles_errors
    def step(ctx: typer.Context) -> tuple[bool, Any]:
        try:
            return True, next(iterator)
        except StopIteration:
            return False, None
        except TimeoutError:
            raise _timeout(job_id, timeout) from None

    while True:
        more, event = step(ctx=ctx)
        if not more:
            return
        yield event


@handles_errors
def _adapter(ctx: typer.Context, adapter_id: str) -> Adapter:
    return ok(get_adapter.sync_detailed(adapter_id, client=client(ctx)))


@handles_errors
def _get(ctx: typer.Context, job_id: str) -> Job:
    return ok(get_job.sync_detailed(job_id, client=client(ctx)))


def _print_outcome(job: Job, ctx: typer.Context) -> None:
    state = str(job.state)
    took = ""
    started, finished = unset(job.started_at), unset(job.finished_at)
    if started and finished:
        took = f" in {(finished - started).total_seconds():.1f} s"
    if state == "succeeded":
        adapter = _adapter(ctx, job.adapter_id)
        out.print(f"[green]succeeded[/green]{took}: adapter [bold]{adapter.name}:"
                  f"{adapter.version}[/bold] ({adapter.id})")
        out.print(f"  continue from it with lora_path: {adapter.lora_path}", markup=False)
    elif state == "failed":
        error = unset(job.error)
        reason = f"{error.code}: {error.message}" if error else "no reason given"
        out.print(f"[red]failed[/red]{took} (attempt {job.attempt}): {reason}")
    else:
        out.print(f"[yellow]{state}[/yellow]{took}")


def _state_detail(data: dict[str, Any]) -> str:
    extra = {k: v for k, v in data.items() if k not in ("from", "to") and v not in (None, "")}
    return ("  " + " ".join(f"{k}={v}" for k, v in extra.items())) if extra else ""


def _data(event: JobEvent) -> dict[str, Any]:
    data = event.data
    return data.to_dict() if hasattr(data, "to_dict") else dict(data or {})


def _metrics(job: Job) -> dict[str, Any] | None:
    metrics = unset(job.metrics)
    return metrics.to_dict() if metrics is not None and hasattr(metrics, "to_dict") else None


def _event_text(event: JobEvent) -> str:
    data = _data(event)
    if event.kind == "log":
        return str(data.get("line", data))
    if event.kind == "state":
        return f"{data.get('from') or 'new'} → {data.get('to')}{_state_detail(data)}"
    if event.kind == "metrics":
        parts = [f"step {data.get('step')}/{data.get('total')}"]
        for key in ("loss", "lr", "grad_norm", "tokens_per_s"):
            if key in data:
                parts.append(f"{key} {fmt_number(data[key])}")
        return "  ".join(parts)
    return " ".join(f"{k}={v}" for k, v in data.items())


def _event_line(event: JobEvent) -> str:
    stamp = unset(event.created_at)
    clock = stamp.astimezone().strftime("%H:%M:%S") if stamp else ""
    return f"{clock}  {event.kind:<10} {_event_text(event)}"


# -------------------------------------------------------------------------- jobs group


@jobs_app.command("list")
@handles_errors
def list_(
    ctx: typer.Context,
    state: Annotated[JobState | None, typer.Option(help="Only jobs in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many (newest first).")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List jobs, newest first."""
    page = ok(list_jobs.sync_detailed(client=client(ctx), state=state, limit=limit))
    if as_json:
        print_json(page.items)
        return
    rows = table("ID", "STATE", "NAME", "STEP", "LOSS", "AGE", wrap=("NAME",))
    for job in page.items:
        metrics = _metrics(job) or {}
        total = unset(job.progress.total)
        rows.add_row(job.id, _styled_state(str(job.state)), _name(job),
                     f"{job.progress.step}/{total if total is not None else '?'}",
                     fmt_number(metrics.get("loss")), ago(job.created_at))
    out.print(rows)
    if unset(page.next_cursor):
        err.print(f"[dim](more: raise --limit; showing {len(page.items)})[/dim]")


def _name(job: Job) -> str:
    """The job's name, else the adapter name it trains (`runner.experiment_name`)."""
    if unset(job.name):
        return str(job.name)
    runner = unset(job.spec.runner)
    return str(unset(runner.experiment_name) or "") if runner is not None else ""


def _styled_state(state: str) -> str:
    colour = {"succeeded": "green", "failed": "red", "cancelled": "yellow",
              "running": "cyan", "cancelling": "yellow"}.get(state)
    return f"[{colour}]{state}[/{colour}]" if colour else state


@jobs_app.command("show")
@handles_errors
def show(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job id (job_…).", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Show one job: state, progress, latest metrics, error, result."""
    job = ok(get_job.sync_detailed(job_id, client=client(ctx)))
    if as_json:
        print_json(job)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    total = unset(job.progress.total)
    rows: list[tuple[str, str]] = [
        ("id", job.id),
        ("name", _name(job)),
        ("state", _styled_state(str(job.state))),
        ("attempt", f"{job.attempt} of {job.max_attempts}"),
        ("progress", f"step {job.progress.step} of {total if total is not None else '?'}"),
    ]
    metrics = _metrics(job)
    if metrics:
        rows.append(("metrics", "  ".join(f"{k} {fmt_number(v)}" for k, v in metrics.items())))
    error = unset(job.error)
    if error:
        retry = "retryable" if unset(error.retryable) else "not retried"
        rows.append(("error", f"[red]{error.code}[/red] ({retry}): {error.message}"))
    model = job.spec.actor.model
    lora = f"lora={unset(model.is_lora)} rank={unset(model.lora_rank)}"
    rows.append(("model", f"{model.model_path}  {lora}"))
    if unset(model.lora_path):
        rows.append(("lora_path", str(model.lora_path)))
    if job.ignored_keys:
        rows.append(("ignored keys", ", ".join(job.ignored_keys)))
    rows += [("adapter", unset(job.adapter_id) or ""),
             ("parent adapter", unset(job.parent_adapter_id) or ""),
             ("worker", unset(job.worker_id) or ""),
             ("created", when(job.created_at)), ("started", when(job.started_at)),
             ("finished", when(job.finished_at))]
    for key, value in rows:
        if value:
            grid.add_row(key, value)
    out.print(grid)


@jobs_app.command("cancel")
@handles_errors
def cancel(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job id (job_…).", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Cancel a job: a queued one at once, a running one within a training step."""
    job = ok(cancel_job.sync_detailed(job_id, client=client(ctx)))
    if as_json:
        print_json(job)
    else:
        out.print(f"{job.id}: {job.state}")


@jobs_app.command("wait")
@handles_errors
def wait(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job id (job_…).", show_default=False)],
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds "
                                                       "(exit 124).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Wait until a job ends; exit 0 if it succeeded, 1 if it failed or was cancelled."""
    try:
        job = wait_for_job(client(ctx), job_id, timeout=timeout)
    except TimeoutError:
        raise _timeout(job_id, timeout) from None
    if as_json:
        print_json(job)
    else:
        _print_outcome(job, ctx)
    raise typer.Exit(int(_outcome(job)))


@jobs_app.command("logs")
@handles_errors
def logs(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job id (job_…).", show_default=False)],
    follow: Annotated[bool, typer.Option("--follow", "-f",
                                         help="Keep printing new events until the job ends.")]
    = False,
    as_json: JsonOption = False,
) -> None:
    """Print a job's events (state changes, log lines, metrics); --json: one JSON per line."""
    sdk = client(ctx)
    emit = print_json_line if as_json else (lambda e: out.print(_event_line(e), markup=False))
    if follow:
        for event in _guarded(follow_events(sdk, job_id), ctx, job_id):
            emit(event)
        return
    cursor = None
    while True:
        page = ok(list_job_events.sync_detailed(job_id, client=sdk, cursor=cursor, limit=1000))
        for event in page.items:
            emit(event)
        cursor = unset(page.next_cursor)
        if not cursor:
            return
