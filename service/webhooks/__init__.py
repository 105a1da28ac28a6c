"""Webhooks: subscriptions, the outbox written with the change that causes each message,
Standard Webhooks signatures, the target allow-list, and the delivery loop any API replica
may run (docs/architecture.md, "Webhooks")."""

from service.webhooks.delivery import deliver_due, deliver_forever
from service.webhooks.outbox import enqueue
from service.webhooks.signing import new_secret, sign
from service.webhooks.subscriptions import (
    create_webhook,
    delete_webhook,
    get_delivery,
    get_webhook,
    list_deliveries,
    list_webhooks,
    redeliver,
)
from service.webhooks.targets import AllowList

__all__ = [
    "AllowList",
    "create_webhook",
    "delete_webhook",
    "deliver_due",
    "deliver_forever",
    "enqueue",
    "get_delivery",
    "get_webhook",
    "list_deliveries",
    "list_webhooks",
    "new_secret",
    "redeliver",
    "sign",
]
