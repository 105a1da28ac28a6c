"""Subscriptions and their messages: create (the secret shown once), list, get, delete; a
subscription's deliveries with every attempt; redeliver on demand. Functions flush, routes
commit; a project's session sees only its project's rows (db/scoping.py)."""

from __future__ import annotations

import json
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from db import models
from db.base import utcnow
from db.scoping import project_for_new_rows
from service.errors import NotFound
from service.ids import new_id
from service.paging import newest_first
from service.schemas import Page, from_row
from service.schemas.webhooks import (
    DeliveryState,
    NewWebhook,
    Webhook,
    WebhookAttempt,
    WebhookCreate,
    WebhookDelivery,
)
from service.webhooks.signing import new_secret
from service.webhooks.targets import AllowList, check_new_target


def _public(row: models.Webhook) -> Webhook:
    return from_row(Webhook, row)


def create_webhook(session: Session, request: WebhookCreate, allow: AllowList) -> NewWebhook:
    """A new subscription of the session's project, its URL checked against the allow-list."""
    target = check_new_target(allow, request.url)
    row = models.Webhook(id=new_id("wh"), url=target.url,
                         events=[e.value for e in request.events],
                         description=request.description, secret=new_secret(),
                         project=project_for_new_rows(session), created_at=utcnow())
    session.add(row)
    session.flush()
    return NewWebhook(**_public(row).model_dump(), secret=row.secret)


def webhook_row(session: Session, webhook_id: str) -> models.Webhook:
    row = session.scalar(select(models.Webhook).where(models.Webhook.id == webhook_id))
    if row is None:
        raise NotFound(f"no webhook {webhook_id!r}")
    return row


def get_webhook(session: Session, webhook_id: str) -> Webhook:
    return _public(webhook_row(session, webhook_id))


def list_webhooks(session: Session, *, limit: int, cursor: str | None) -> Page[Webhook]:
    rows, next_cursor = newest_first(session, select(models.Webhook), models.Webhook.id,
                                     limit=limit, cursor=cursor)
    return Page[Webhook](items=[_public(r) for r in rows], next_cursor=next_cursor)


def delete_webhook(session: Session, webhook_id: str) -> None:
    """Remove a subscription with its messages (those still pending are never sent)."""
    session.delete(webhook_row(session, webhook_id))
    session.flush()


def _deliveries(session: Session, rows: list[models.WebhookDelivery]) -> list[WebhookDelivery]:
    attempts: dict[str, list[WebhookAttempt]] = defaultdict(list)
    if rows:
        for a in session.scalars(
            select(models.WebhookAttempt)
            .where(models.WebhookAttempt.delivery_id.in_([r.id for r in rows]))
            .order_by(models.WebhookAttempt.id)
        ):
            attempts[a.delivery_id].append(from_row(WebhookAttempt, a))
    return [
        from_row(WebhookDelivery, r, payload=json.loads(r.body), attempt_log=attempts[r.id],
                 next_attempt_at=r.next_attempt_at if r.state == DeliveryState.pending else None)
        for r in rows
    ]


def list_deliveries(session: Session, webhook_id: str, *, state: DeliveryState | None,
                    limit: int, cursor: str | None) -> Page[WebhookDelivery]:
    """A subscription's messages, newest first, each with its attempts."""
    webhook_row(session, webhook_id)
    stmt = select(models.WebhookDelivery).where(models.WebhookDelivery.webhook_id == webhook_id)
    if state is not None:
        stmt = stmt.where(models.WebhookDelivery.state == state.value)
    rows, next_cursor = newest_first(session, stmt, models.WebhookDelivery.id, limit=limit,
                                     cursor=cursor)
    return Page[WebhookDelivery](items=_deliveries(session, rows), next_cursor=next_cursor)


def _delivery_row(session: Session, webhook_id: str, delivery_id: str) -> models.WebhookDelivery:
    row = session.scalar(select(models.WebhookDelivery).where(
        models.WebhookDelivery.id == delivery_id,
        models.WebhookDelivery.webhook_id == webhook_id))
    if row is None:
        webhook_row(session, webhook_id)
        raise NotFound(f"webhook {webhook_id} has no message {delivery_id!r}")
    return row


def get_delivery(session: Session, webhook_id: str, delivery_id: str) -> WebhookDelivery:
    return _deliveries(session, [_delivery_row(session, webhook_id, delivery_id)])[0]


def redeliver(session: Session, webhook_id: str, delivery_id: str) -> WebhookDelivery:
    """Send a message again, now, with the same `webhook-id` and body; its retry window
    starts again."""
    row = _delivery_row(session, webhook_id, delivery_id)
    now = utcnow()
    row.state = DeliveryState.pending.value
    row.next_attempt_at = now
    row.retry_from = now
    session.flush()
    return _deliveries(session, [row])[0]
