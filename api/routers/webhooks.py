"""`/webhooks`: subscriptions to job, adapter and alias events, their messages, redelivery."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import CursorQuery, LimitQuery, SessionDep, StateDep, require
from api.errors import AUTH_ERRORS, problems
from service import webhooks
from service.schemas import Page, Role
from service.schemas.webhooks import (
    DeliveryState,
    NewWebhook,
    Webhook,
    WebhookCreate,
    WebhookDelivery,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"],
                   dependencies=[require(Role.admin, Role.user)], responses=AUTH_ERRORS)
ERRORS = problems({404: "No such webhook or message", 422: "Invalid or refused request"})


@router.post("", status_code=201, response_model=NewWebhook, operation_id="create_webhook",
             summary="Subscribe a URL to events (its signing secret is shown once)",
             responses=ERRORS)
def create_webhook(body: WebhookCreate, session: SessionDep, state: StateDep) -> NewWebhook:
    allow = webhooks.AllowList.parse(state.settings.webhook_allowed_hosts)
    created = webhooks.create_webhook(session, body, allow)
    session.commit()
    return created


@router.get("", response_model=Page[Webhook], operation_id="list_webhooks",
            summary="List the project's webhooks (never their secrets)", responses=ERRORS)
def list_webhooks(session: SessionDep, limit: LimitQuery = 100,
                  cursor: CursorQuery = None) -> Page[Webhook]:
    return webhooks.list_webhooks(session, limit=limit, cursor=cursor)


@router.get("/{webhook_id}", response_model=Webhook, operation_id="get_webhook",
            summary="One webhook", responses=ERRORS)
def get_webhook(webhook_id: str, session: SessionDep) -> Webhook:
    return webhooks.get_webhook(session, webhook_id)


@router.delete("/{webhook_id}", status_code=204, response_class=Response,
               operation_id="delete_webhook",
               summary="Delete a webhook and its messages (pending ones are not sent)",
               responses=ERRORS)
def delete_webhook(webhook_id: str, session: SessionDep) -> Response:
    webhooks.delete_webhook(session, webhook_id)
    session.commit()
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=Page[WebhookDelivery],
            operation_id="list_webhook_deliveries",
            summary="A webhook's messages, newest first, with every attempt", responses=ERRORS)
def list_deliveries(
    webhook_id: str,
    session: SessionDep,
    state: Annotated[DeliveryState | None, Query()] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[WebhookDelivery]:
    return webhooks.list_deliveries(session, webhook_id, state=state, limit=limit, cursor=cursor)


@router.get("/{webhook_id}/deliveries/{delivery_id}", response_model=WebhookDelivery,
            operation_id="get_webhook_delivery", summary="One message with its attempts",
            responses=ERRORS)
def get_delivery(webhook_id: str, delivery_id: str, session: SessionDep) -> WebhookDelivery:
    return webhooks.get_delivery(session, webhook_id, delivery_id)


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=202,
             response_model=WebhookDelivery, operation_id="redeliver_webhook",
             summary="Send a message again now (same webhook-id and body)", responses=ERRORS)
def redeliver(webhook_id: str, delivery_id: str, session: SessionDep) -> WebhookDelivery:
    delivery = webhooks.redeliver(session, webhook_id, delivery_id)
    session.commit()
    return delivery
