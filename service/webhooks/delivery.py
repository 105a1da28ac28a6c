"""The delivery loop, which every API process runs: claim due messages, POST each signed, record
the attempt, and retry with exponential backoff and jitter until the message is delivered
or LORAPLANE_WEBHOOK_MAX_AGE_SECONDS have passed.

Replicas share the work through the database. A claim is one statement, `UPDATE … WHERE id
IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING` on PostgreSQL (under SQLite's single
`BEGIN IMMEDIATE` writer elsewhere), that counts the attempt and pushes `next_attempt_at`
past the attempt's longest duration: a lease. A process that dies mid-attempt leaves the
message due again once that lease ends, so it is delivered at least once; the result is
written only while the claim still holds (same attempt number, still pending).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db import models
from db.base import utcnow
from service.errors import ServiceError
from service.schemas.webhooks import DeliveryState
from service.settings import Settings
from service.webhooks.signing import signed_headers
from service.webhooks.targets import (
    SETTING,
    AllowList,
    parse_target,
    pick_address,
    resolve_async,
)

log = logging.getLogger(__name__)

BATCH = 20  # messages claimed at once by one process
EXCERPT_BYTES = 1024  # of a receiver's answer, kept with the attempt
LEASE_MARGIN_SECONDS = 5.0
USER_AGENT = "loraplane-webhooks/0.1"
PENDING = DeliveryState.pending.value


@dataclass(frozen=True)
class Due:
    """A claimed message: what to send, where, and which attempt this is."""

    id: str
    webhook_id: str
    url: str
    secret: str
    body: str
    attempt: int


@dataclass(frozen=True)
class Outcome:
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None
    excerpt: str | None

    @property
    def delivered(self) -> bool:
        return self.error is None


def claim_due(session: Session, *, lease_seconds: float, limit: int = BATCH) -> list[Due]:
    """Claim up to `limit` due messages for one attempt each (caller commits)."""
    now = utcnow()
    D = models.WebhookDelivery
    pick = (select(D.id).where(D.state == PENDING, D.next_attempt_at <= now)
            .order_by(D.next_attempt_at, D.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    claimed = dict(session.execute(
        update(D)
        .where(D.id.in_(pick), D.state == PENDING)
        .values(attempts=D.attempts + 1, next_attempt_at=now + timedelta(seconds=lease_seconds))
        .returning(D.id, D.attempts)
        .execution_options(synchronize_session=False)
    ).tuples().all())
    if not claimed:
        return []
    W = models.Webhook
    rows = session.execute(
        select(D.id, D.webhook_id, D.body, W.url, W.secret)
        .join(W, W.id == D.webhook_id)
        .where(D.id.in_(list(claimed)))
        .order_by(D.next_attempt_at, D.id)
    ).all()
    return [Due(id=r.id, webhook_id=r.webhook_id, url=r.url, secret=r.secret, body=r.body,
                attempt=claimed[r.id]) for r in rows]


def retry_delay(settings: Settings, attempt: int) -> float:
    """Seconds before the attempt after `attempt` (1-based): doubled each time, capped, and
    drawn from its upper half so replicas and messages spread out."""
    delay = min(settings.webhook_retry_base_seconds * 2 ** min(attempt - 1, 40),
                settings.webhook_retry_max_seconds)
    return delay / 2 + random.uniform(0, delay / 2)


def record_outcome(session: Session, due: Due, outcome: Outcome, settings: Settings) -> bool:
    """Store an attempt and what follows from it (delivered, due again, or given up), if the
    claim still holds; False if it does not (the message was deleted or claimed anew)."""
    D = models.WebhookDelivery
    retry_from = session.scalar(
        select(D.retry_from).where(D.id == due.id, D.attempts == due.attempt, D.state == PENDING)
        .with_for_update())  # a redelivery asked for meanwhile waits for this write
    if retry_from is None:
        return False
    session.add(models.WebhookAttempt(
        delivery_id=due.id, attempt=due.attempt, started_at=outcome.started_at,
        duration_ms=outcome.duration_ms, status_code=outcome.status_code, error=outcome.error,
        response_excerpt=outcome.excerpt))
    values: dict = {"last_status_code": outcome.status_code, "last_error": outcome.error}
    now = utcnow()
    if outcome.delivered:
        values.update(state=DeliveryState.delivered.value, delivered_at=now)
    else:
        due_at = now + timedelta(seconds=retry_delay(settings, due.attempt))
        if due_at > retry_from + timedelta(seconds=settings.webhook_max_age_seconds):
            values.update(state=DeliveryState.failed.value)
            log.warning("webhook message %s given up after %d attempts: %s", due.id,
                        due.attempt, outcome.error)
        else:
            values.update(next_attempt_at=due_at)
    session.execute(update(D).where(D.id == due.id, D.attempts == due.attempt, D.state == PENDING)
                    .values(**values).execution_options(synchronize_session=False))
    session.flush()
    return True


async def attempt(client: httpx.AsyncClient, allow: AllowList, due: Due,
                  timeout: float) -> Outcome:
    """POST one message once: resolve its host, check the address, send it signed."""
    started, clock = utcnow(), time.monotonic()
    status: int | None = None
    excerpt: str | None = None

    def outcome(error: str | None) -> Outcome:
        return Outcome(started, round((time.monotonic() - clock) * 1000, 1), status, error,
                       excerpt)

    try:
        target = parse_target(due.url)
        try:
            addresses = await asyncio.wait_for(resolve_async(target), timeout)
        except (OSError, TimeoutError, UnicodeError) as exc:
            return outcome(f"cannot resolve {target.host}: {exc or 'timed out'}")
        address = pick_address(allow, target, addresses)
        if address is None:
            shown = ", ".join(str(a) for a in addresses)
            return outcome(f"refused: {target.host} resolves to {shown}, which {SETTING} "
                           "does not allow")
        headers = signed_headers(due.secret, due.id, int(time.time()), due.body)
        headers.update({"host": target.host_header, "user-agent": USER_AGENT})
        extensions = ({"sni_hostname": target.host}
                      if target.scheme == "https" and target.literal is None else {})
        # httpx's timeout bounds each read; this bounds the whole answer (a receiver that
        # drips a byte at a time must not hold the claim past its lease).
        async with asyncio.timeout(timeout), client.stream(
                "POST", target.url_for(address), content=due.body.encode(), headers=headers,
                extensions=extensions) as response:
            status = response.status_code
            kept = b""
            async for chunk in response.aiter_bytes():
                kept += chunk
                if len(kept) >= EXCERPT_BYTES:
                    break
            excerpt = kept[:EXCERPT_BYTES].decode("utf-8", "replace") or None
    except ServiceError as exc:
        return outcome(exc.message)
    except (httpx.TimeoutException, TimeoutError):
        return outcome(f"timed out after {timeout:g} s")
    except httpx.HTTPError as exc:
        return outcome(f"{type(exc).__name__}: {exc}"[:500])
    if not 200 <= status < 300:
        return outcome(f"the receiver answered HTTP {status}")
    return outcome(None)


def any_due(session: Session) -> bool:
    """Whether a message is due (a read: an idle round takes no write lock)."""
    D = models.WebhookDelivery
    return session.scalar(select(D.id).where(D.state == PENDING, D.next_attempt_at <= utcnow())
                          .limit(1)) is not None


async def deliver_due(open_session: Callable[[], Session], settings: Settings,
                      client: httpx.AsyncClient, allow: AllowList, *,
                      open_reader: Callable[[], Session] | None = None) -> int:
    """One round: claim due messages, attempt each (concurrently), record the outcomes.
    Returns how many were attempted. `open_reader`: sessions that only read (db.engine.reading),
    for the look that comes first."""
    lease = settings.webhook_timeout_seconds * 2 + LEASE_MARGIN_SECONDS

    def claim() -> list[Due]:
        with (open_reader or open_session)() as session:
            if not any_due(session):
                return []
        with open_session() as session:
            dues = claim_due(session, lease_seconds=lease)
            session.commit()
            return dues

    dues = await asyncio.to_thread(claim)
    if not dues:
        return 0
    outcomes = await asyncio.gather(
        *(attempt(client, allow, due, settings.webhook_timeout_seconds) for due in dues))

    def record() -> None:
        with open_session() as session:
            for due, result in zip(dues, outcomes, strict=True):
                record_outcome(session, due, result, settings)
            session.commit()

    await asyncio.to_thread(record)
    return len(dues)


def http_client(settings: Settings) -> httpx.AsyncClient:
    """The client of the loop: short timeout, no redirects followed (a redirect could point
    anywhere), no proxy from the environment (the address checked is the one connected to)."""
    return httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False,
                             trust_env=False)


async def deliver_forever(open_session: Callable[[], Session], settings: Settings, *,
                          open_reader: Callable[[], Session] | None = None) -> None:
    """The loop an API process runs from start-up to shutdown (cancel the task to stop)."""
    allow = AllowList.parse(settings.webhook_allowed_hosts)
    async with http_client(settings) as client:
        while True:
            try:
                attempted = await deliver_due(open_session, settings, client, allow,
                                              open_reader=open_reader)
            except Exception:  # the database may be briefly away; try again next round
                log.warning("webhook delivery round failed", exc_info=True)
                attempted = 0
            if attempted < BATCH:
                await asyncio.sleep(settings.webhook_poll_seconds)
