"""`loraplane tokens …`: create, list and revoke bearer tokens (admin token needed)."""

from __future__ import annotations

from typing import Annotated

import typer
from loraplane_client import ok
from loraplane_client.api.tokens import create_token, list_tokens, revoke_token
from loraplane_client.models import Role, TokenCreate, TokenInfo

from cli.common import (
    JsonOption,
    client,
    err,
    handles_errors,
    out,
    print_json,
    table,
    unset,
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
    if as_json:
        print_json(token)
        return
    err.print(f"created {token.id} ({token.role}, project {token.project}); the token, shown "
              "once:")
    out.print(token.token, markup=False)


@tokens_app.command("list")
@handles_errors
def list_(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many (newest first).")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List tokens (never their values)."""
    page = ok(list_tokens.sync_detailed(client=client(ctx), limit=limit))
    if as_json:
        print_json(page.items)
        return
    rows = table("ID", "NAME", "ROLE", "PROJECT", "CREATED", "LAST USED", "REVOKED",
                 wrap=("NAME",))
    for token in page.items:
        rows.add_row(*_row(token))
    out.print(rows)
    if unset(page.next_cursor):
        err.print(f"[dim](more: raise --limit; showing {len(page.items)})[/dim]")


@tokens_app.command("revoke")
@handles_errors
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="The token id (tok_…).", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Revoke a token: refused from its next request on."""
    token = ok(revoke_token.sync_detailed(token_id, client=client(ctx)))
    if as_json:
        print_json(token)
        return
    out.print(f"{token.id} revoked at {when(token.revoked_at)}")
