"""`loraplane webhooks …`: subscribe URLs to events, list and delete them, see each
message's attempts and send one again. SDK only."""

from __future__ import annotations

from typing import Annotated

import typer
from loraplane_client import ok
from loraplane_client.api.webhooks import (
    create_webhook,
    delete_webhook,
    list_webhook_deliveries,
    list_webhooks,
    redeliver_webhook,
)
from loraplane_client.models import (
    DeliveryState,
    NewWebhook,
    Webhook,
    WebhookCreate,
    WebhookDelivery,
    WebhookEvent,
)

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
    unset,
    when,
)

webhooks_app = typer.Typer(help="Webhooks: be told when a job ends, an adapter is registered "
                           "or an alias moves.", no_args_is_help=True)
WebhookId = Annotated[str, typer.Argument(help="The webhook id (wh_…).", show_default=False)]


def _row(hook: Webhook) -> tuple[str, ...]:
    return (hook.id, hook.url, ", ".join(str(e) for e in hook.events),
            unset(hook.description) or "", when(hook.created_at))


@webhooks_app.command("create")
@handles_errors
def create(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The http(s) URL to POST to; the operator's "
                                       "LORAPLANE_WEBHOOK_ALLOWED_HOSTS must allow it.",
                                       show_default=False)],
    event: Annotated[list[WebhookEvent], typer.Option(
        "--event", "-e", help="An event to be told of (repeat for more).",
        show_default=False)],
    description: Annotated[str | None, typer.Option(help="A note on what it is for.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Subscribe a URL; the signing secret is printed once and cannot be shown again."""
    hook = ok(create_webhook.sync_detailed(client=client(ctx), body=WebhookCreate(
        url=url, events=event, description=description)))
    print_result(hook, as_json, _print_created)


def _print_created(hook: NewWebhook) -> None:
    err.print(f"created {hook.id} → {hook.url} ({', '.join(str(e) for e in hook.events)}); "
              "the signing secret, shown once:")
    out.print(hook.secret, markup=False)


@webhooks_app.command("list")
@handles_errors
def list_(ctx: typer.Context, limit: LimitOption = 100, as_json: JsonOption = False) -> None:
    """List the project's webhooks (never their secrets)."""
    page = ok(list_webhooks.sync_detailed(client=client(ctx), limit=limit))
    print_page(page, as_json, table("ID", "URL", "EVENTS", "DESCRIPTION", "CREATED",
                                    wrap=("URL", "DESCRIPTION")), _row)


@webhooks_app.command("delete")
@handles_errors
def delete(ctx: typer.Context, webhook_id: WebhookId) -> None:
    """Delete a webhook and its messages (pending ones are not sent)."""
    ok(delete_webhook.sync_detailed(webhook_id, client=client(ctx)))
    out.print(f"{webhook_id} deleted")


def _delivery_row(d: WebhookDelivery) -> tuple[str, ...]:
    status = unset(d.last_status_code)
    return (d.id, str(d.event_type), str(d.state), str(d.attempts),
            "" if status is None else str(status), unset(d.last_error) or "",
            when(d.created_at), when(d.next_attempt_at))


@webhooks_app.command("deliveries")
@handles_errors
def deliveries(
    ctx: typer.Context,
    webhook_id: WebhookId,
    state: Annotated[DeliveryState | None, typer.Option(help="Only messages in this state.")]
    = None,
    limit: LimitOption = 50,
    as_json: JsonOption = False,
) -> None:
    """A webhook's messages, newest first: state, attempts, last status or error."""
    page = ok(list_webhook_deliveries.sync_detailed(webhook_id, client=client(ctx),
                                                    state=state, limit=limit))
    print_page(page, as_json, table("MESSAGE", "EVENT", "STATE", "ATTEMPTS", "STATUS",
                                    "LAST ERROR", "CREATED", "NEXT ATTEMPT",
                                    wrap=("LAST ERROR",)), _delivery_row)


@webhooks_app.command("redeliver")
@handles_errors
def redeliver(
    ctx: typer.Context,
    webhook_id: WebhookId,
    message_id: Annotated[str, typer.Argument(help="The message id (msg_…, its webhook-id).",
                                              show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Send a message again now, with the same webhook-id and body."""
    delivery = ok(redeliver_webhook.sync_detailed(webhook_id, message_id, client=client(ctx)))
    print_result(delivery, as_json, lambda d: out.print(f"{d.id} queued to be sent again"))
