"""`loraplane adapters …` and `loraplane datasets …`: the registry from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from loraplane_client import download_adapter, ok, resolve_adapter
from loraplane_client.api.adapters import list_adapters
from loraplane_client.api.datasets import get_dataset, list_datasets, upload_dataset
from loraplane_client.models import Adapter, Dataset, ListAdaptersKindType0
from loraplane_client.types import UNSET, File
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from cli.common import (
    JsonOption,
    LimitOption,
    ago,
    as_dict,
    client,
    err,
    fmt_number,
    handles_errors,
    human_bytes,
    out,
    print_fields,
    print_json,
    print_page,
    print_result,
    status,
    table,
    unset,
    when,
)

adapters_app = typer.Typer(help="Browse the adapter registry and download adapters.",
                           no_args_is_help=True)
datasets_app = typer.Typer(help="Upload and list JSONL training datasets.", no_args_is_help=True)

RefArgument = Annotated[str, typer.Argument(
    help="An adapter id (ad_…), name:version, name@alias, a name (its newest version), "
         "or the adapter's URL.", show_default=False)]


def _ref(adapter: Adapter) -> str:
    return f"{adapter.name}:{adapter.version}"


def _final_loss(adapter: Adapter) -> str:
    return fmt_number((as_dict(adapter.metrics) or {}).get("loss"))


# ------------------------------------------------------------------------------ adapters


@adapters_app.command("list")
@handles_errors
def list_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(help="Only versions of this adapter name.")] = None,
    base_model: Annotated[str | None, typer.Option(help="Only adapters of this base model.")]
    = None,
    kind: Annotated[ListAdaptersKindType0 | None, typer.Option(help="lora or full.")] = None,
    tag: Annotated[list[str] | None, typer.Option(
        "--tag", help="KEY:VALUE (or KEY); repeated, all must hold.", show_default=False)]
    = None,
    order_by: Annotated[str, typer.Option(
        help="created_at (newest first), metrics.NAME (ascending) or -metrics.NAME; adapters "
             "without that metric come last.")] = "created_at",
    limit: LimitOption = 20,
    as_json: JsonOption = False,
) -> None:
    """List adapters, newest first (or by a final metric)."""
    page = ok(list_adapters.sync_detailed(client=client(ctx), name=name, base_model=base_model,
                                          kind=kind, tag=tag or UNSET, order_by=order_by,
                                          limit=limit))
    aliases = any(adapter.aliases for adapter in page.items)  # the column only if used
    columns = ["ID", "ADAPTER", "KIND", "BASE MODEL", "RANK", "LOSS", "AGE"]
    rows = table(*columns, *(["ALIASES"] if aliases else []), wrap=("BASE MODEL", "ALIASES"))

    def cells(adapter: Adapter) -> list[str]:
        return [adapter.id, _ref(adapter), str(adapter.kind), adapter.base_model,
                fmt_number(unset(adapter.rank)), _final_loss(adapter), ago(adapter.created_at),
                *([", ".join(adapter.aliases)] if aliases else [])]

    print_page(page, as_json, rows, cells)


@adapters_app.command("show")
@handles_errors
def show(ctx: typer.Context, ref: RefArgument, as_json: JsonOption = False) -> None:
    """Show an adapter: what it was trained from, its lineage, files and lora_path."""
    print_result(resolve_adapter(client(ctx), ref), as_json, _print_adapter)


def _print_adapter(adapter: Adapter) -> None:
    lineage = " ← ".join([_ref(adapter)] + [f"{e.name}:{e.version}" for e in adapter.lineage])
    rows = [
        ("id", adapter.id),
        ("adapter", _ref(adapter)),
        ("kind", str(adapter.kind)),
        ("base model", adapter.base_model),
        ("rank / alpha", f"{fmt_number(unset(adapter.rank))} / {fmt_number(unset(adapter.alpha))}"),
        ("target modules", ", ".join(adapter.target_modules)),
        ("job", unset(adapter.job_id) or ""),
        ("lineage", lineage),
        ("aliases", ", ".join(adapter.aliases)),
        ("final loss", _final_loss(adapter)),
        ("source", str(adapter.source)),
        ("description", unset(adapter.description) or ""),
        ("tags", ", ".join(f"{k}={v}" for k, v in adapter.tags.to_dict().items())),
        ("created", when(adapter.created_at)),
        ("lora_path", adapter.lora_path),
    ]
    print_fields(rows)
    files = table("FILE", "SIZE", "SHA256")
    for f in adapter.files:
        files.add_row(f.name, human_bytes(f.size), f.sha256)
    out.print(files)


@adapters_app.command("pull")
@handles_errors
def pull(
    ctx: typer.Context,
    ref: RefArgument,
    dest: Annotated[Path, typer.Argument(help="Folder to write the PEFT files into.",
                                         show_default=False, file_okay=False)],
    as_json: JsonOption = False,
) -> None:
    """Download an adapter into DEST: resumable, every file's sha256 verified.

    The folder loads with `PeftModel.from_pretrained(base, DEST)` and works as an RLinf
    `lora_path`. Run it again after an interruption to resume where it stopped.
    """
    sdk = client(ctx)
    adapter = resolve_adapter(sdk, ref)
    total = sum(f.size for f in adapter.files)
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), TimeRemainingColumn(), console=err,
                   disable=as_json)
    with bar:
        task = bar.add_task(_ref(adapter), total=total)
        folder = download_adapter(sdk, adapter, dest,
                                  progress=lambda done, _total: bar.update(task, completed=done))
    if as_json:
        print_json({"adapter": adapter.to_dict(), "path": str(folder.resolve()),
                    "files": [f.to_dict() for f in adapter.files], "verified": True})
        return
    out.print(f"pulled [bold]{_ref(adapter)}[/bold] ({adapter.id}) to {folder}: "
              f"{len(adapter.files)} files, {human_bytes(total)}, sha256 verified")


# ------------------------------------------------------------------------------ datasets


def _dataset_rows(dataset: Dataset) -> list[tuple[str, str]]:
    return [("id", dataset.id), ("name", dataset.name), ("rows", str(dataset.rows)),
            ("keys", ", ".join(dataset.keys)), ("size", human_bytes(dataset.size)),
            ("sha256", dataset.sha256), ("created", when(dataset.created_at))]


def _print_dataset(dataset: Dataset) -> None:
    print_fields(_dataset_rows(dataset), skip_empty=False)


@datasets_app.command("upload")
@handles_errors
def upload(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A JSONL file: one JSON object per line.",
                                         exists=True, dir_okay=False, readable=True,
                                         show_default=False)],
    name: Annotated[str | None, typer.Option(help="Default: the dataset id.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a JSONL training file; use its id in `data.train_data_paths`."""
    with status(f"uploading {file.name} ({human_bytes(file.stat().st_size)})",
                enabled=not as_json), file.open("rb") as f:
        dataset = ok(upload_dataset.sync_detailed(
            client=client(ctx), body=File(payload=f, file_name=file.name), name=name))
    print_result(dataset, as_json, _print_dataset)


@datasets_app.command("list")
@handles_errors
def list_datasets_(
    ctx: typer.Context,
    limit: LimitOption = 20,
    as_json: JsonOption = False,
) -> None:
    """List datasets, newest first."""
    page = ok(list_datasets.sync_detailed(client=client(ctx), limit=limit))
    rows = table("ID", "NAME", "ROWS", "KEYS", "SIZE", "AGE", wrap=("NAME", "KEYS"))
    print_page(page, as_json, rows, lambda d: (d.id, d.name, str(d.rows), ", ".join(d.keys),
                                               human_bytes(d.size), ago(d.created_at)))


@datasets_app.command("show")
@handles_errors
def show_dataset(
    ctx: typer.Context,
    dataset_id: Annotated[str, typer.Argument(help="The dataset id (ds_…).", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Show a dataset."""
    dataset = ok(get_dataset.sync_detailed(dataset_id, client=client(ctx)))
    print_result(dataset, as_json, _print_dataset)
