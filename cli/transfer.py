"""`loraplane adapters import|tag|describe` and `loraplane export|import`: adapters and whole
registries in and out, with progress bars for the transfers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from loraplane_client import (
    describe_adapter,
    export_registry,
    import_adapter,
    import_registry,
    tag_adapter,
)
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from cli.common import JsonOption, client, err, handles_errors, human_bytes, out, print_json
from cli.registry import RefArgument, _print_adapter, _ref, adapters_app


def _bar(as_json: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=err, disable=as_json)


def _tags(items: list[str]) -> dict[str, str]:
    tags = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            key, sep, value = item.partition(":")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--tag")
        tags[key] = value
    return tags


TagOption = Annotated[list[str] | None, typer.Option(
    "--tag", help="KEY=VALUE (repeatable).", show_default=False)]


@adapters_app.command("import")
@handles_errors
def import_(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(
        help="A PEFT folder (adapter_config.json + adapter_model.safetensors; other files such "
             "as README.md stay behind) or a tar of one (what `GET /adapters/ID/archive` gives).",
        exists=True, show_default=False)],
    name: Annotated[str, typer.Option(help="The adapter name; the import is its next version.",
                                      show_default=False)],
    base_model: Annotated[str, typer.Option(
        help="The model it was trained on, as a job's actor.model.model_path names it.",
        show_default=False)],
    description: Annotated[str | None, typer.Option(help="A description.")] = None,
    tag: TagOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import an adapter trained elsewhere (RLinf, TRL, Axolotl, peft) into the registry."""
    sdk = client(ctx)
    with _bar(as_json) as bar:
        task = bar.add_task(f"importing {source.name}", total=None)
        adapter, created = import_adapter(
            sdk, source, name=name, base_model=base_model, description=description,
            tags=_tags(tag or []),
            progress=lambda sent, total: bar.update(task, completed=sent, total=total))
    if as_json:
        print_json({"adapter": adapter.to_dict(), "created": created})
        return
    if created:
        out.print(f"imported [bold]{_ref(adapter)}[/bold] ({adapter.id})")
    else:
        out.print(f"[bold]{_ref(adapter)}[/bold] ({adapter.id}) already holds these bytes; "
                  "nothing new was made")
    _print_adapter(adapter)


@adapters_app.command("tag")
@handles_errors
def tag_(
    ctx: typer.Context,
    ref: RefArgument,
    tags: Annotated[list[str] | None, typer.Argument(
        help="KEY=VALUE to set (other tags stay).", show_default=False)] = None,
    remove: Annotated[list[str] | None, typer.Option(
        "--remove", help="A tag key to drop (repeatable).", show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """Set or remove tags of an adapter; list them by `adapters list --tag KEY:VALUE`."""
    adapter = tag_adapter(client(ctx), ref, _tags(tags or []), remove=remove or [])
    if as_json:
        print_json(adapter)
        return
    shown = ", ".join(f"{k}={v}" for k, v in adapter.tags.to_dict().items()) or "(none)"
    out.print(f"{_ref(adapter)} ({adapter.id}) tags: {shown}")


@adapters_app.command("describe")
@handles_errors
def describe(
    ctx: typer.Context,
    ref: RefArgument,
    text: Annotated[str | None, typer.Argument(help="The description; leave out with "
                                               "--clear.", show_default=False)] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the description.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Set (or clear) an adapter's description."""
    if (text is None) == (not clear):
        raise typer.BadParameter("give a description or --clear, not both or neither")
    adapter = describe_adapter(client(ctx), ref, None if clear else text)
    if as_json:
        print_json(adapter)
        return
    out.print(f"{_ref(adapter)} ({adapter.id}): {adapter.description or '(no description)'}")


def export(
    ctx: typer.Context,
    dest: Annotated[Path, typer.Argument(help="The tar file to write.", dir_okay=False,
                                         show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Export the project's whole registry (adapters, versions, aliases, lineage, files)."""
    with _bar(as_json) as bar:
        task = bar.add_task("exporting", total=None)
        path = export_registry(client(ctx), dest,
                               progress=lambda done, _total: bar.update(task, completed=done))
    size = path.stat().st_size
    if as_json:
        print_json({"path": str(path.resolve()), "size": size})
        return
    out.print(f"exported the registry to {path} ({human_bytes(size)})")


def import_archive(
    ctx: typer.Context,
    archive: Annotated[Path, typer.Argument(help="A tar from `loraplane export`.", exists=True,
                                            dir_okay=False, show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Import a registry archive into this project: ids, versions, aliases, lineage kept."""
    with _bar(as_json) as bar:
        task = bar.add_task(f"importing {archive.name}", total=None)
        result = import_registry(
            client(ctx), archive,
            progress=lambda sent, total: bar.update(task, completed=sent, total=total))
    if as_json:
        print_json(result)
        return
    out.print(f"{len(result.adapters_created)} adapters added, {len(result.adapters_present)} "
              f"already here; {result.aliases_set} aliases set; {result.blobs_stored} files "
              f"stored, {result.blobs_present} already held")


export = handles_errors(export)
import_archive = handles_errors(import_archive)
