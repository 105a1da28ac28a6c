"""`loraplane`: run the server and workers (cli/processes.py), and talk to a running server
through the SDK (every other module of cli/)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import processes
from cli.common import EXIT_CODES_HELP, Remote
from cli.jobs import jobs_app
from cli.registry import adapters_app, datasets_app
from cli.submit import submit
from cli.tasks import evaluate, sample
from cli.tokens import tokens_app
from cli.transfer import export, import_archive
from cli.webhooks import webhooks_app

app = typer.Typer(
    name="loraplane",
    help="Self-hosted service for the whole life of LoRA adapters.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command(epilog=EXIT_CODES_HELP)(submit)
app.add_typer(jobs_app, name="jobs")
app.add_typer(adapters_app, name="adapters")
app.add_typer(datasets_app, name="datasets")
app.add_typer(tokens_app, name="tokens")
app.add_typer(webhooks_app, name="webhooks")
app.command("eval", epilog=EXIT_CODES_HELP)(evaluate)
app.command(epilog=EXIT_CODES_HELP)(sample)
app.command("export")(export)
app.command("import")(import_archive)
app.command()(processes.serve)
app.command()(processes.migrate)
app.command()(processes.worker)


@app.callback()
def _connection(
    ctx: typer.Context,
    server: Annotated[str | None, typer.Option(
        envvar="LORAPLANE_SERVER", show_default=False,
        help="The API's base URL for client commands (default: http://127.0.0.1:8000).")] = None,
    token: Annotated[str | None, typer.Option(
        envvar="LORAPLANE_TOKEN", show_default=False,
        help="API token for client commands (default: LORAPLANE_ADMIN_TOKEN, else "
             "$LORAPLANE_DATA_DIR/admin.token, else ./.loraplane/admin.token).")] = None,
) -> None:
    """Self-hosted service for the whole life of LoRA adapters."""
    ctx.obj = Remote(server, token)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
