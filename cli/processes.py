"""The commands that compose processes: `serve` (API + local workers), `migrate`, `worker`.

They import the server (`api`, `service`, `db`) or the worker program (`worker`); every
other command in `cli/` speaks to a running server through the SDK only.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from service.settings import Settings


def _set_env(name: str, value: object | None) -> None:
    if value is not None:
        os.environ[f"LORAPLANE_{name}"] = str(value)


def _settings() -> Settings:
    """The settings from the environment (and the options set into it); a bad value is a
    usage error naming its variable, not a traceback."""
    from pydantic import ValidationError

    from service.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "LORAPLANE_" + "_".join(str(part) for part in error["loc"][:1]).upper()
            typer.echo(f"loraplane: {name}={error.get('input')!r}: {error['msg']}", err=True)
        raise typer.Exit(2) from None


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind [LORAPLANE_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind [LORAPLANE_PORT].")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder [LORAPLANE_DATA_DIR].")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL [LORAPLANE_DATABASE_URL].")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Local worker processes to start [LORAPLANE_WORKERS].")
    ] = None,
    api_processes: Annotated[
        int | None, typer.Option(help="API processes on the one port [LORAPLANE_API_PROCESSES].")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Run the API (migrating the database first), the demo base model, and local workers."""
    from api.app import create_app
    from cli.embedded import EmbeddedServer, serve_processes
    from worker.demo import ensure_demo_model

    _set_env("HOST", host)
    _set_env("PORT", port)
    _set_env("DATA_DIR", data_dir)
    _set_env("DATABASE_URL", database_url)
    _set_env("WORKERS", workers)
    _set_env("API_PROCESSES", api_processes)
    configure_logging(log_level)
    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    demo = ensure_demo_model(settings.models_dir)
    typer.echo(f"loraplane: data in {settings.data_dir}, database {_safe_url(settings.database_url)}")
    typer.echo(f"loraplane: demo base model ready as 'demo-tiny-llama' ({demo})")
    processes = (f"{settings.api_processes} API processes, "
                 if settings.api_processes > 1 else "")
    typer.echo(f"loraplane: API on http://{settings.host}:{settings.port}  (docs at /docs), "
               f"{processes}{settings.workers} local worker(s)")
    typer.echo(f"loraplane: admin token in {settings.data_dir / 'admin.token'} (mode 0600); "
               "the CLI and SDK read it from there or from LORAPLANE_TOKEN")
    if settings.api_processes > 1:
        serve_processes(settings, log_level=log_level)
        return
    EmbeddedServer(create_app(settings, freeze_gc=True), settings, log_level=log_level).run()


def migrate(
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL [LORAPLANE_DATABASE_URL].")
    ] = None,
) -> None:
    """Upgrade the database schema to the newest migration, then exit."""
    from db.engine import make_engine
    from db.migrate import current_revision, upgrade

    _set_env("DATABASE_URL", database_url)
    settings = _settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    typer.echo(f"database {_safe_url(settings.database_url)} at {current_revision(engine)}")
    engine.dispose()


def worker(
    server: Annotated[str, typer.Option(help="The API's base URL.", envvar="LORAPLANE_SERVER")],
    token: Annotated[
        str | None, typer.Option(help="Worker token.", envvar="LORAPLANE_WORKER_TOKEN")
    ] = None,
    device: Annotated[str, typer.Option(
        help="auto, cpu, cuda (every visible GPU), cuda:N or cuda:0,1 (those GPUs).")] = "auto",
    cpu_ranks: Annotated[int, typer.Option(
        help="With --device cpu: CPU ranks offered to multi-device jobs (gloo).")] = 1,
    threads_per_rank: Annotated[int | None, typer.Option(
        help="torch threads per rank of a multi-device job [default: cores / ranks].")] = None,
    models_dir: Annotated[
        Path | None, typer.Option(help="Base models by name [LORAPLANE_MODELS_DIR].")
    ] = None,
    work_dir: Annotated[Path | None, typer.Option(help="Scratch and download cache.")] = None,
    once: Annotated[bool, typer.Option(help="Exit after one job.")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Claim and run training jobs from a loraplane server until stopped (SIGTERM hands back)."""
    import signal

    from cli.parent import exit_with_serve
    from worker import Worker, WorkerOptions

    configure_logging(log_level)
    exit_with_serve()
    settings = _settings()
    options = WorkerOptions(
        server=server,
        token=token,
        models_dir=models_dir or settings.models_dir,
        work_dir=work_dir or settings.data_dir / "worker",
        device=device,
        cpu_ranks=cpu_ranks,
        threads_per_rank=threads_per_rank,
        once=once,
    )
    runner = Worker(options)
    signal.signal(signal.SIGTERM, runner.on_signal)
    signal.signal(signal.SIGINT, runner.on_signal)
    runner.run()


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
