"""How jobs and their events read on a terminal: table cells, the detail view, event lines."""

from __future__ import annotations

from typing import Any

from loraplane_client.models import Adapter, Job, JobEvent

from cli.common import ago, as_dict, fmt_number, out, unset, when

JOB_COLUMNS = ("ID", "STATE", "NAME", "STEP", "LOSS", "AGE")


def job_name(job: Job) -> str:
    """The job's name, else the adapter name it trains (`runner.experiment_name`)."""
    if unset(job.name):
        return str(job.name)
    runner = unset(job.spec.runner)
    return str(unset(runner.experiment_name) or "") if runner is not None else ""


def styled_state(state: str) -> str:
    colour = {"succeeded": "green", "failed": "red", "cancelled": "yellow",
              "running": "cyan", "cancelling": "yellow"}.get(state)
    return f"[{colour}]{state}[/{colour}]" if colour else state


def _step(job: Job) -> str:
    total = unset(job.progress.total)
    return f"{job.progress.step}/{total if total is not None else '?'}"


def job_cells(job: Job) -> tuple[str, ...]:
    """A row of `jobs list` (JOB_COLUMNS)."""
    metrics = as_dict(job.metrics) or {}
    return (job.id, styled_state(str(job.state)), job_name(job), _step(job),
            fmt_number(metrics.get("loss")), ago(job.created_at))


def job_fields(job: Job) -> list[tuple[str, str]]:
    """`jobs show`: state, progress, latest metrics, error, model, result."""
    total = unset(job.progress.total)
    rows: list[tuple[str, str]] = [
        ("id", job.id),
        ("name", job_name(job)),
        ("state", styled_state(str(job.state))),
        ("attempt", f"{job.attempt} of {job.max_attempts}"),
        ("progress", f"step {job.progress.step} of {total if total is not None else '?'}"),
    ]
    metrics = as_dict(job.metrics)
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
    return rows


def print_outcome(job: Job, adapter: Adapter | None) -> None:
    """How a job ended: the adapter it made, the reason it failed, or its state."""
    state = str(job.state)
    took = ""
    started, finished = unset(job.started_at), unset(job.finished_at)
    if started and finished:
        took = f" in {(finished - started).total_seconds():.1f} s"
    if state == "succeeded" and adapter is not None:
        out.print(f"[green]succeeded[/green]{took}: adapter [bold]{adapter.name}:"
                  f"{adapter.version}[/bold] ({adapter.id})")
        out.print(f"  continue from it with lora_path: {adapter.lora_path}", markup=False)
    elif state == "failed":
        error = unset(job.error)
        reason = f"{error.code}: {error.message}" if error else "no reason given"
        out.print(f"[red]failed[/red]{took} (attempt {job.attempt}): {reason}")
    else:
        out.print(f"[yellow]{state}[/yellow]{took}")


def state_detail(data: dict[str, Any]) -> str:
    """A state event's extra fields (`worker_id=… attempt=…`), after two spaces."""
    extra = {k: v for k, v in data.items() if k not in ("from", "to") and v not in (None, "")}
    return ("  " + " ".join(f"{k}={v}" for k, v in extra.items())) if extra else ""


def event_data(event: JobEvent) -> dict[str, Any]:
    data = event.data
    return data.to_dict() if hasattr(data, "to_dict") else dict(data or {})


def event_text(event: JobEvent) -> str:
    """An event's content on one line, by kind."""
    data = event_data(event)
    if event.kind == "log":
        return str(data.get("line", data))
    if event.kind == "state":
        return f"{data.get('from') or 'new'} → {data.get('to')}{state_detail(data)}"
    if event.kind == "metrics":
        parts = [f"step {data.get('step')}/{data.get('total')}"]
        for key in ("loss", "lr", "grad_norm", "tokens_per_s"):
            if key in data:
                parts.append(f"{key} {fmt_number(data[key])}")
        return "  ".join(parts)
    return " ".join(f"{k}={v}" for k, v in data.items())


def event_line(event: JobEvent) -> str:
    """`jobs logs`: local time, kind, text."""
    stamp = unset(event.created_at)
    clock = stamp.astimezone().strftime("%H:%M:%S") if stamp else ""
    return f"{clock}  {event.kind:<10} {event_text(event)}"
