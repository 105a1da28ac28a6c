"""Blob garbage: which blobs rows still refer to, collection after a commit, the sweep.

Blob garbage is never deleted inside a transaction (a rollback would leave rows pointing at
nothing): functions that drop references return the sha256s that may have become garbage,
and the caller passes them to `collect_garbage` after its commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import Text, cast, or_, select
from sqlalchemy.orm import Session

from db import models
from service.artifacts import ArtifactStore

log = logging.getLogger(__name__)


def referenced_blobs(session: Session, sha256s: Iterable[str]) -> set[str]:
    """Which of these blobs a row still refers to: adapter files, unpruned checkpoints, datasets."""
    wanted = set(sha256s)
    if not wanted:
        return set()
    found = set(
        session.scalars(
            select(models.AdapterFile.sha256)
            .where(models.AdapterFile.sha256.in_(wanted))
            .distinct()
            .execution_options(unscoped=True)
        )
    )
    found |= set(
        session.scalars(
            select(models.Dataset.sha256)
            .where(models.Dataset.sha256.in_(wanted))
            .execution_options(unscoped=True)
        )
    )
    rest = wanted - found
    if rest:
        # A text prefilter portable across engines, confirmed on the parsed file lists.
        as_text = cast(models.Checkpoint.files, Text)
        lists = session.scalars(
            select(models.Checkpoint.files)
            .where(models.Checkpoint.pruned.is_(False), or_(*(as_text.contains(s) for s in rest)))
            .execution_options(unscoped=True)
        )
        for files in lists:
            found |= {f.get("sha256") for f in files} & rest
    return found


def collect_garbage(session: Session, store: ArtifactStore, candidates: Iterable[str]) -> list[str]:
    """After a commit: delete the candidate blobs no row refers to; returns those deleted.
    Best effort: a blob that cannot be deleted now is logged and left to the blob sweep (the
    commit it follows stands either way)."""
    candidates = set(candidates)
    live = referenced_blobs(session, candidates)
    deleted = []
    for sha in sorted(candidates - live):
        try:
            if store.delete(sha):
                deleted.append(sha)
        except OSError:
            log.exception("could not delete blob %s; the blob sweep will retry", sha)
    if deleted:
        log.info("collected %d unreferenced blobs", len(deleted))
    return deleted


def sweep_blobs(session: Session, store: ArtifactStore, older_than: timedelta) -> list[str]:
    """Delete blobs no row refers to that nobody wrote for `older_than` (uploads of refused
    results, files of deleted objects whose collection was interrupted)."""
    store.cleanup_temp(older_than)
    return collect_garbage(session, store, list(store.stale_blobs(older_than)))
