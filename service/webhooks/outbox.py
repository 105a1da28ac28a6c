"""The outbox: a change that webhooks are told of writes one message per subscription that
wants it, in the change's own transaction (the caller's session; this only adds rows). A
rollback takes the messages with it; a commit makes them as durable as the change, so a
crash before delivery loses nothing: whichever API process runs the loop next sends them."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select, bindparam, insert, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from db import models
from db.base import utcnow
from service.ids import new_id
from service.schemas.webhooks import DeliveryState, WebhookEvent


def message_body(event: WebhookEvent, data: dict[str, Any], at: str) -> str:
    """The JSON every attempt of a message sends, byte for byte."""
    return json.dumps({"type": event.value, "timestamp": at, "data": data},
                      separators=(",", ":"), ensure_ascii=False)


# Built once: the lookup runs on every job's end. Core statements on the session's connection
# (no autoflush of the change they go with, no ORM object for a message).
_WEBHOOKS = models.Webhook.__table__


def subscriptions_where(*criteria: Any) -> Select:
    """The (id, events) of the subscriptions `criteria` select (by project)."""
    return select(_WEBHOOKS.c.id, _WEBHOOKS.c.events).where(*criteria)


_SUBSCRIPTIONS = subscriptions_where(_WEBHOOKS.c.project == bindparam("of_project"))
_ADD_MESSAGES = insert(models.WebhookDelivery.__table__)


def enqueue(session: Session, *, project: str, event: WebhookEvent,
            data: Callable[[], dict[str, Any]],
            subscriptions: Sequence[Row] | None = None) -> int:
    """Write a message of `event` for every subscription of `project` that wants it; `data`
    (the job, adapter or alias as the API shows it) is built only if one does. Returns how
    many were written. `subscriptions`: the project's (id, events), when the caller's own
    statement read them (service/jobs.py, `write_state`)."""
    connection = session.connection()
    if subscriptions is None:
        subscriptions = connection.execute(_SUBSCRIPTIONS, {"of_project": project}).all()
    wanted = [s.id for s in subscriptions if event.value in s.events]
    if not wanted:
        return 0
    now = utcnow()
    body = message_body(event, data(), now.isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"))
    connection.execute(_ADD_MESSAGES, [
        {"id": new_id("msg"), "webhook_id": webhook_id, "project": project,
         "event_type": event.value, "body": body, "state": DeliveryState.pending.value,
         "attempts": 0, "next_attempt_at": now, "retry_from": now, "created_at": now}
        for webhook_id in wanted])
    return len(wanted)
