"""`loraplane tokens …`: create, list and revoke bearer tokens (admin token needed)."""

from __future__ import annotations

from typing import Annotated

import typer
from loraplane_client import ok
from loraplane_client.api.tokens import create_token, list_tokens, revoke_token
from loraplane_client.models import NewToken, Role, TokenCreate, TokenInfo

from cli.common import (
    JsonOption,
    LimitOption,
    client,
    err,
    handles_errors,
    out,
    print_page,
    print_result,
    table,
    when,
)

tokens_app = typer.Typer(help="Create, list and revoke API tokens (needs an admin token).",
                         no_args_is_help=True)


def _row(token: TokenInfo) -> tuple[str, ...]:
    revoked = when(token.revoked_at)
    return (token.id, token.name, str(token.role), token.project, when(token.created_at),
            when(token.last_used_at), f"[red]{revoked}[/red]" if revoked else "")


@tokens_app.command("create")
@handles_errors
def create(
    ctx: typer.Context,
    role: Annotated[Role, typer.Option(
        help="admin, user (jobs, datasets, adapters and aliases of its project) or worker.")],
    project: Annotated[str, typer.Option(help="The project the token acts in.")] = "default",
    name: Annotated[str, typer.Option(help="A note on what the token is for.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create a token; its value is printed once and cannot be shown again."""
    token = ok(create_token.sync_detailed(
        client=client(ctx), body=TokenCreate(role=role, project=project, name=name)))
    print_result(token, as_json, _print_created)


def _print_created(token: NewToken) -> None:
    err.print(f"created {token.id} ({token.role}, project {token.project}); the token, shown "
              "once:")
    out.print(token.token, markup=False)


@tokens_app.command("list")
@handles_errors
def list_(
    ctx: typer.Context,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
) -> None:
    """List tokens (never their values)."""
    page = ok(list_tokens.sync_detailed(client=client(ctx), limit=limit))
    rows = table("ID", "NAME", "ROLE", "PROJECT", "CREATED", "LAST USED", "REVOKED",
                 wrap=("NAME",))
    print_page(page, as_json, rows, _row)


@tokens_app.command("revoke")
@handles_errors
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="The token id (tok_…).", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Revoke a token: refused from its next request on."""
    token = ok(revoke_token.sync_detailed(token_id, client=client(ctx)))
    print_result(token, as_json, lambda t: out.print(f"{t.id} revoked at {when(t.revoked_at)}"))
