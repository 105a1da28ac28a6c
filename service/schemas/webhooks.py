"""Webhooks as clients see them: subscriptions (the secret shown once), messages, attempts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_validator


class WebhookEvent(StrEnum):
    """What a subscription may be told of."""

    job_succeeded = "job.succeeded"
    job_failed = "job.failed"
    job_cancelled = "job.cancelled"
    adapter_registered = "adapter.registered"
    alias_moved = "alias.moved"


class DeliveryState(StrEnum):
    pending = "pending"  # due at next_attempt_at (or being attempted)
    delivered = "delivered"  # a 2xx answer
    failed = "failed"  # given up after LORAPLANE_WEBHOOK_MAX_AGE_SECONDS


class WebhookCreate(BaseModel):
    url: str = Field(min_length=1, max_length=2048,
                     description="http(s) URL the messages are POSTed to; its host must be in "
                     "the operator's LORAPLANE_WEBHOOK_ALLOWED_HOSTS.")
    events: list[WebhookEvent] = Field(min_length=1, max_length=len(WebhookEvent),
                                       description="The events to be told of.")
    description: str | None = Field(None, max_length=500)

    @field_validator("events")
    @classmethod
    def _unique(cls, events: list[WebhookEvent]) -> list[WebhookEvent]:
        return sorted(set(events), key=list(WebhookEvent).index)


class Webhook(BaseModel):
    id: str
    url: str
    events: list[WebhookEvent]
    description: str | None
    project: str
    created_at: datetime


class NewWebhook(Webhook):
    secret: str = Field(description="`whsec_<base64>`: the key that signs every message "
                        "(Standard Webhooks). Shown once; later reads never show it.")


class WebhookAttempt(BaseModel):
    attempt: int = Field(description="1 for the first POST of the message.")
    started_at: datetime
    duration_ms: float
    status_code: int | None = Field(description="The receiver's HTTP status; null: no answer.")
    error: str | None = Field(description="Why the attempt failed (connection, timeout, "
                              "status, a refused address); null when it succeeded.")
    response_excerpt: str | None = Field(description="The first bytes of the receiver's answer.")


class WebhookDelivery(BaseModel):
    id: str = Field(description="The message's `webhook-id`, the same on every attempt.")
    webhook_id: str
    event_type: WebhookEvent
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None = Field(description="When it is due again (pending only).")
    created_at: datetime
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    payload: dict[str, Any] = Field(description="The JSON body every attempt sends.")
    attempt_log: list[WebhookAttempt] = Field(description="Every attempt, oldest first.")
