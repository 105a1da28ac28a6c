"""Aliases: `name@alias` points to one version of a name; `latest` always to the newest."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db import models
from db.base import utcnow
from service.errors import InvalidRequest, NotFound
from service.names import is_valid_name
from service.registry.adapters import adapter_row, latest_version, upsert
from service.schemas import Alias, from_row
from service.schemas.webhooks import WebhookEvent
from service.webhooks.outbox import enqueue

LATEST = "latest"  # a virtual alias: the newest version of a name



def validate_alias(alias: str) -> str:
    """The alias, if it follows the name grammar (service/names.py); 422 otherwise."""
    if not is_valid_name(alias):
        raise InvalidRequest(
            f"alias {alias!r} is not valid: 1 to 100 of letters, digits, `.`, `_`, `-`, "
            "starting with a letter or digit",
            code="invalid_alias",
        )
    return alias


def get_alias(session: Session, name: str, alias: str) -> Alias:
    """The adapter an alias points to; `latest` always means the newest version."""
    if alias == LATEST:
        row = latest_version(session, name)
        if row is None:
            raise NotFound(f"no adapter named {name!r}")
        return Alias(
            name=name,
            alias=alias,
            adapter_id=row.id,
            version=row.version,
            updated_at=row.created_at,
        )
    found = session.execute(
        select(models.Alias, models.Adapter.version)
        .join(models.Adapter, models.Adapter.id == models.Alias.adapter_id)
        .where(models.Alias.name == name, models.Alias.alias == alias)
    ).first()
    if found is None:
        raise NotFound(f"no alias {alias!r} of adapter name {name!r}")
    row, version = found
    return from_row(Alias, row, version=version)


def set_alias(session: Session, name: str, alias: str, adapter_id: str) -> Alias:
    """Create or move `name@alias` to an adapter of that name."""
    validate_alias(alias)
    if alias == LATEST:
        raise InvalidRequest(
            f"alias {LATEST!r} is reserved: it always means the newest version",
            code="invalid_alias",
        )
    try:
        target = adapter_row(session, adapter_id, lock="share")
    except NotFound:
        raise InvalidRequest(f"no adapter {adapter_id!r}", code="invalid_alias") from None
    if target.name != name:
        raise InvalidRequest(
            f"adapter {adapter_id} is named {target.name!r} (v{target.version}), not {name!r}; "
            f"an alias of {name!r} can only point to an adapter of that name",
            code="invalid_alias",
        )
    previous = session.scalar(select(models.Alias.adapter_id).where(
        models.Alias.project == target.project, models.Alias.name == name,
        models.Alias.alias == alias))
    now = utcnow()
    stmt = upsert(session, models.Alias).values(
        project=target.project, name=name, alias=alias, adapter_id=adapter_id, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[models.Alias.project, models.Alias.name, models.Alias.alias],
        set_={"adapter_id": adapter_id, "updated_at": now},
    )
    session.execute(stmt)
    session.flush()
    moved = Alias(
        name=name, alias=alias, adapter_id=adapter_id, version=target.version, updated_at=now
    )
    if previous != adapter_id:  # webhooks: the outbox row commits with the move
        enqueue(session, project=target.project, event=WebhookEvent.alias_moved,
                data=lambda: {**moved.model_dump(mode="json"),
                              "previous_adapter_id": previous})
    return moved


def delete_alias(session: Session, name: str, alias: str) -> None:
    """Remove `name@alias`; 404 if there is none."""
    result = session.execute(
        delete(models.Alias).where(models.Alias.name == name, models.Alias.alias == alias)
    )
    if result.rowcount == 0:
        raise NotFound(f"no alias {alias!r} of adapter name {name!r}")
    session.flush()
