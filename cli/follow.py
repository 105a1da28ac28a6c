"""Following a job: its events live under a rich progress bar, and how it ended."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Self

import typer
from loraplane_client import follow_events, ok
from loraplane_client.api.adapters import get_adapter
from loraplane_client.api.jobs import get_job
from loraplane_client.models import Adapter, Job, JobEvent
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cli.common import Exit, as_dict, client, err, fmt_number, handles_errors, unset
from cli.views import event_data, event_text, print_outcome, state_detail


class ProgressBar:
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


def follow_job(ctx: typer.Context, job: Job, *, quiet: bool, timeout: float | None) -> Job:
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
    with ProgressBar(job.id, enabled=not quiet) as bar:
        bar.update(job.progress.step, unset(job.progress.total))
        for event in guarded(follow_events(client(ctx), job.id, timeout=timeout), ctx, job.id,
                             timeout):
            data = event_data(event)
            if event.kind == "metrics":
                bar.update(data.get("step"), data.get("total"), data.get("loss"))
            elif event.kind == "state":
                bar.note(f"[bold]{data.get('from') or 'new'} → {data.get('to')}[/bold]"
                         + state_detail(data))
            elif event.kind in ("log", "checkpoint"):
                bar.note(f"[dim]{event_text(event)}[/dim]")
        final = _get(ctx, job.id)
        bar.update(final.progress.step, unset(final.progress.total) or final.progress.step,
                   (as_dict(final.metrics) or {}).get("loss"))
    if not quiet:
        report_outcome(ctx, final)
    return final


def timed_out(job_id: str, timeout: float | None) -> typer.Exit:
    """Say that --timeout passed; return the Exit (124) to raise."""
    err.print(f"[yellow]timed out[/yellow]: job {job_id} has not ended after {timeout} s "
              "(it goes on; `loraplane jobs show` tells how it does)")
    return typer.Exit(int(Exit.TIMEOUT))


def guarded(events: Iterable[JobEvent], ctx: typer.Context, job_id: str,
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
            raise timed_out(job_id, timeout) from None

    while True:
        more, event = step(ctx=ctx)
        if not more:
            return
        yield event


def exit_for(job: Job) -> Exit:
    """0 for a job that succeeded, 1 for one that failed or was cancelled."""
    return Exit.OK if str(job.state) == "succeeded" else Exit.JOB_FAILED


def report_outcome(ctx: typer.Context, job: Job) -> None:
    """Print how an ended job ended, with the adapter a successful one made."""
    made = str(job.state) == "succeeded" and unset(job.adapter_id)  # evaluations make none
    adapter = _adapter(ctx, job.adapter_id) if made else None
    print_outcome(job, adapter)


@handles_errors
def _adapter(ctx: typer.Context, adapter_id: str) -> Adapter:
    return ok(get_adapter.sync_detailed(adapter_id, client=client(ctx)))


@handles_errors
def _get(ctx: typer.Context, job_id: str) -> Job:
    return ok(get_job.sync_detailed(job_id, client=client(ctx)))
