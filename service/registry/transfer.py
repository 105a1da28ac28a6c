"""A project's whole registry as one archive, and back.

The archive is an uncompressed tar: `manifest.json` first (`RegistryManifest`: every
adapter with its version, files, lineage link, metrics, metadata; every alias), then
`blobs/<sha256>` once per distinct file. Restoring keeps ids, versions, creation times,
aliases and lineage; every adapter passes the registry's rules again
(service/registry/register.py); blobs the store already holds are not written twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from db import models
from db.base import utcnow
from db.scoping import project_for_new_rows
from service.artifacts import ArtifactStore
from service.errors import Conflict, InvalidArtifact
from service.registry.adapters import to_adapters
from service.registry.aliases import set_alias
from service.registry.intake import Intake, Member
from service.registry.metadata import validate_description, validate_tags
from service.registry.register import check_adapter_files, insert_adapter
from service.schemas import (
    ExportedAdapter,
    ExportedAlias,
    RegistryImport,
    RegistryManifest,
)

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
BLOBS = "blobs/"
MAX_MANIFEST_BYTES = 256 << 20


def export_registry(session: Session) -> tuple[RegistryManifest, list[tuple[str, str, int]]]:
    """The manifest of the session's project and the (archive name, sha256, size) of its blobs."""
    rows = list(session.scalars(select(models.Adapter).order_by(models.Adapter.id)))
    adapters = [
        ExportedAdapter.model_validate(
            {**a.model_dump(), "tags": a.tags, "files": [f.model_dump() for f in a.files]}
        )
        for a in to_adapters(session, rows, None)
    ]
    aliases = [
        ExportedAlias(name=r.name, alias=r.alias, adapter_id=r.adapter_id)
        for r in session.scalars(
            select(models.Alias).order_by(models.Alias.name, models.Alias.alias)
        )
    ]
    manifest = RegistryManifest(
        project=project_for_new_rows(session), exported_at=utcnow(), adapters=adapters,
        aliases=aliases,
    )
    sizes = {f.sha256: f.size for a in adapters for f in a.files}
    return manifest, [(f"{BLOBS}{sha}", sha, size) for sha, size in sorted(sizes.items())]


def manifest_bytes(manifest: RegistryManifest) -> bytes:
    return json.dumps(manifest.model_dump(mode="json"), indent=1, sort_keys=True).encode()


def read_archive(members: Iterable[Member], intake: Intake) -> tuple[RegistryManifest, int]:
    """The manifest (the first member) and the blobs after it, each stored and verified by
    its sha256; returns the manifest and how many blobs the store already held."""
    it = iter(members)
    first = next(it, None)
    if first is None or first.name != MANIFEST:
        raise InvalidArtifact(f"a registry archive starts with {MANIFEST}", code="invalid_archive")
    try:
        manifest = RegistryManifest.model_validate_json(first.read_all(MAX_MANIFEST_BYTES))
    except ValueError as exc:
        raise InvalidArtifact(f"{MANIFEST} is not a registry manifest: {exc}",
                              code="invalid_archive") from None
    wanted = {f.sha256 for a in manifest.adapters for f in a.files}
    present = 0
    for member in it:
        sha = member.name.removeprefix(BLOBS)
        if not member.name.startswith(BLOBS) or sha not in wanted:
            raise InvalidArtifact(f"archive member {member.name!r} is no blob the manifest names",
                                  code="invalid_archive")
        before = len(intake.added)
        intake.put(member.chunks(), expected_size=member.size, expected_sha256=sha)
        present += len(intake.added) == before
    return manifest, present


def _parents_first(adapters: list[ExportedAdapter]) -> list[ExportedAdapter]:
    by_id = {a.id: a for a in adapters}
    ordered: list[ExportedAdapter] = []
    placed: set[str] = set()

    def place(adapter: ExportedAdapter, trail: set[str]) -> None:
        if adapter.id in placed:
            return
        parent = by_id.get(adapter.parent_adapter_id or "")
        if parent is not None and parent.id not in trail:
            place(parent, trail | {adapter.id})
        placed.add(adapter.id)
        ordered.append(adapter)

    for adapter in sorted(adapters, key=lambda a: a.id):
        place(adapter, set())
    return ordered


def restore_registry(
    session: Session, store: ArtifactStore, manifest: RegistryManifest
) -> RegistryImport:
    """Add the manifest's adapters and aliases to the session's project. An adapter already
    here (same id, name, version and files) is left as it is; one whose id or name and
    version is taken by something else is a 409 and nothing is imported."""
    project = project_for_new_rows(session)
    created: list[str] = []
    present: list[str] = []
    known = {a.id for a in manifest.adapters}
    for entry in _parents_first(manifest.adapters):
        checked = check_adapter_files(
            store, entry.kind, entry.files, rank=entry.rank, alpha=entry.alpha,
            target_modules=entry.target_modules,
        )
        if entry.digest is not None and entry.digest != checked.digest:
            raise InvalidArtifact(f"adapter {entry.id}: its files do not match its digest",
                                  code="invalid_archive")
        existing = session.get(models.Adapter, entry.id)
        same_slot = session.scalars(
            select(models.Adapter).where(
                models.Adapter.name == entry.name, models.Adapter.version == entry.version
            )
        ).first()
        if existing is not None or same_slot is not None:
            if existing is not None and existing is same_slot and existing.digest == checked.digest:
                present.append(entry.id)
                continue
            other = existing or same_slot
            assert other is not None
            raise Conflict(
                f"cannot import adapter {entry.id} ({entry.name} v{entry.version}): adapter "
                f"{other.id} ({other.name} v{other.version}) is here with other content",
                code="import_conflict",
            )
        parent = entry.parent_adapter_id
        if parent and parent not in known and session.get(models.Adapter, parent) is None:
            log.warning("adapter %s: its parent %s is in neither the archive nor here",
                        entry.id, parent)
            parent = None
        insert_adapter(
            session, checked, project=project, name=entry.name, kind=entry.kind,
            base_model=entry.base_model, source=entry.source, parent_adapter_id=parent,
            base_fingerprint=entry.base_fingerprint, metrics=entry.metrics,
            description=validate_description(entry.description),
            tags=validate_tags(entry.tags),
            restore=(entry.id, entry.version, entry.created_at),
        )
        created.append(entry.id)
    for alias in manifest.aliases:
        set_alias(session, alias.name, alias.alias, alias.adapter_id)
    session.flush()
    return RegistryImport(
        adapters_created=created, adapters_present=present, aliases_set=len(manifest.aliases),
        blobs_stored=0, blobs_present=0,
    )
