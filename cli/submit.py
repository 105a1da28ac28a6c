"""`loraplane submit`: send a spec (with --set overrides) and, with --follow, watch the job."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml
from loraplane_client import submit_spec
from loraplane_client.models import Job

from cli.common import JsonOption, client, err, handles_errors, out, print_json, unset
from cli.follow import exit_for, follow_job


def load_spec(spec: str, overrides: list[str]) -> Path | str | bytes:
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
    body = load_spec(spec, overrides or [])
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
    final = follow_job(ctx, job, quiet=as_json, timeout=timeout)
    if as_json:
        print_json(final)
    raise typer.Exit(int(exit_for(final)))


@handles_errors
def _submit(ctx: typer.Context, body: Path | str | bytes, key: str | None) -> Job:
    return submit_spec(client(ctx), body, idempotency_key=key)
