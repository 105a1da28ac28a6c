"""`loraplane jobs …`: list, show, cancel, wait for and read the logs of training jobs.

`loraplane submit` is in cli/submit.py, following a job live in cli/follow.py, how jobs
read on a terminal in cli/views.py.
"""

from __future__ import annotations

from typing import Annotated

import typer
from loraplane_client import follow_events, ok, wait_for_job
from loraplane_client.api.jobs import cancel_job, get_job, list_job_events, list_jobs
from loraplane_client.models import JobState

from cli.common import (
    JsonOption,
    LimitOption,
    client,
    handles_errors,
    out,
    print_fields,
    print_json_line,
    print_page,
    print_result,
    table,
    unset,
)
from cli.follow import exit_for, guarded, report_outcome, timed_out
from cli.views import JOB_COLUMNS, event_line, job_cells, job_fields

__all__ = ["jobs_app"]

jobs_app = typer.Typer(help="List, inspect, cancel and follow training jobs.",
                       no_args_is_help=True)

JobIdArgument = Annotated[str, typer.Argument(help="The job id (job_…).", show_default=False)]


@jobs_app.command("list")
@handles_errors
def list_(
    ctx: typer.Context,
    state: Annotated[JobState | None, typer.Option(help="Only jobs in this state.")] = None,
    limit: LimitOption = 20,
    as_json: JsonOption = False,
) -> None:
    """List jobs, newest first."""
    page = ok(list_jobs.sync_detailed(client=client(ctx), state=state, limit=limit))
    print_page(page, as_json, table(*JOB_COLUMNS, wrap=("NAME",)), job_cells)


@jobs_app.command("show")
@handles_errors
def show(
    ctx: typer.Context,
    job_id: JobIdArgument,
    as_json: JsonOption = False,
) -> None:
    """Show one job: state, progress, latest metrics, error, result."""
    job = ok(get_job.sync_detailed(job_id, client=client(ctx)))
    print_result(job, as_json, lambda j: print_fields(job_fields(j)))


@jobs_app.command("cancel")
@handles_errors
def cancel(
    ctx: typer.Context,
    job_id: JobIdArgument,
    as_json: JsonOption = False,
) -> None:
    """Cancel a job: a queued one at once, a running one within a training step."""
    job = ok(cancel_job.sync_detailed(job_id, client=client(ctx)))
    print_result(job, as_json, lambda j: out.print(f"{j.id}: {j.state}"))


@jobs_app.command("wait")
@handles_errors
def wait(
    ctx: typer.Context,
    job_id: JobIdArgument,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds "
                                                       "(exit 124).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Wait until a job ends; exit 0 if it succeeded, 1 if it failed or was cancelled."""
    try:
        job = wait_for_job(client(ctx), job_id, timeout=timeout)
    except TimeoutError:
        raise timed_out(job_id, timeout) from None
    print_result(job, as_json, lambda j: report_outcome(ctx, j))
    raise typer.Exit(int(exit_for(job)))


@jobs_app.command("logs")
@handles_errors
def logs(
    ctx: typer.Context,
    job_id: JobIdArgument,
    follow: Annotated[bool, typer.Option("--follow", "-f",
                                         help="Keep printing new events until the job ends.")]
    = False,
    as_json: JsonOption = False,
) -> None:
    """Print a job's events (state changes, log lines, metrics); --json: one JSON per line."""
    sdk = client(ctx)
    emit = print_json_line if as_json else (lambda e: out.print(event_line(e), markup=False))
    if follow:
        for event in guarded(follow_events(sdk, job_id), ctx, job_id):
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
