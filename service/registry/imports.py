"""Importing an adapter trained elsewhere: its stored files pass the same rules as a worker's
result (service/registry/register.py) and become the next version of a name, unless that
name already holds these exact bytes."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from db import models
from db.scoping import project_for_new_rows
from service.artifacts import ArtifactStore
from service.errors import InvalidArtifact, InvalidRequest
from service.names import is_valid_name
from service.registry.adapters import to_adapters
from service.registry.metadata import validate_description, validate_tags
from service.registry.register import check_adapter_files, insert_adapter, lock_name
from service.schemas import Adapter, FileRef

log = logging.getLogger(__name__)

MAX_BASE_MODEL = 4096


def validate_import_fields(name: str | None, base_model: str | None) -> tuple[str, str]:
    """`name` of the adapter-name grammar and a non-empty `base_model`; 422 otherwise."""
    if not name or not is_valid_name(name):
        raise InvalidRequest(
            f"name {name!r} is not a valid adapter name: 1 to 100 of letters, digits, `.`, `_`, "
            "`-`, starting with a letter or digit",
            code="invalid_adapter_name",
        )
    if not base_model or len(base_model) > MAX_BASE_MODEL or not base_model.isprintable():
        raise InvalidRequest(
            "base_model is required: the model the adapter was trained on, as jobs name it in "
            "`actor.model.model_path` (e.g. demo-tiny-llama)",
            code="invalid_base_model",
        )
    return name, base_model


def parse_tag_items(items: Sequence[str]) -> dict[str, str]:
    """`k:v` strings (a form's or query's repeated `tag`) as a tag map."""
    tags: dict[str, str] = {}
    for item in items:
        key, colon, value = item.partition(":")
        if not colon:
            raise InvalidRequest(f"tag {item!r} is not `key:value`", code="invalid_tag")
        tags[key] = value
    return validate_tags(tags)


def import_adapter(
    session: Session,
    store: ArtifactStore,
    files: Sequence[FileRef],
    *,
    name: str,
    base_model: str,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    base_url: str | None = None,
) -> tuple[Adapter, bool]:
    """Register stored files as the next version of `name` (`source: import`, no job), or
    return the version of `name` that already holds exactly these files; True if created."""
    name, base_model = validate_import_fields(name, base_model)
    checked = check_adapter_files(store, "lora", files)
    if checked.lora_modules == 0:
        raise InvalidArtifact(
            "adapter_model.safetensors holds no LoRA weights (`….lora_A.weight` and "
            "`….lora_B.weight` pairs)",
            code="tensor_shape_mismatch",
        )
    project = project_for_new_rows(session)
    lock_name(session, project, name)
    existing = session.scalars(
        select(models.Adapter)
        .where(models.Adapter.name == name, models.Adapter.digest == checked.digest)
        .order_by(models.Adapter.version)
        .limit(1)
    ).first()
    if existing is not None:
        log.info("import of %s matches %s v%d; nothing new", name, name, existing.version)
        return to_adapters(session, [existing], base_url)[0], False
    row = insert_adapter(
        session, checked, project=project, name=name, kind="lora", base_model=base_model,
        source="import", description=validate_description(description),
        tags=validate_tags(tags or {}),
    )
    log.info("imported adapter %s (%s v%d)", row.id, name, row.version)
    return to_adapters(session, [row], base_url)[0], True
