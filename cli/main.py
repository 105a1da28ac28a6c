"""`loraplane`: run the server and workers, and talk to a running server."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="loraplane",
    help="Self-hosted service for the whole life of LoRA adapters.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _set_env(name: str, value: object | None) -> None:
    if value is not None:
        os.environ[f"LORAPLANE_{name}"] = str(value)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind [LORAPLANE_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind [LORAPLANE_PORT].")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder [LORAPLANE_DATA_DIR].")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL [LORAPLANE_DATABASE_URL].")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Run the API (migrating the database first) with the demo base model ready."""
    import uvicorn

    from api.app import create_app
    from service.settings import Settings

    _set_env("HOST", host)
    _set_env("PORT", port)
    _set_env("DATA_DIR", data_dir)
    _set_env("DATABASE_URL", database_url)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    typer.echo(f"loraplane: data in {settings.data_dir}, database {_safe_url(settings.database_url)}")
    typer.echo(f"loraplane: API on http://{settings.host}:{settings.port}  (docs at /docs)")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=log_level.lower())


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
