"""Registration: a finished job's output, or an imported folder (service/registry/imports.py),
becomes the next version of its name. Both go through `check_adapter_files` and
`insert_adapter`: one set of rules for every adapter the registry holds."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import case
from sqlalchemy.orm import Session

from db import models
from db.base import utcnow
from service.artifacts import ArtifactStore
from service.errors import InvalidArtifact
from service.ids import new_id
from service.registry.adapters import to_adapters, upsert
from service.registry.files import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    PEFT_FILES,
    check_files,
    content_digest,
    read_json_blob,
)
from service.registry.job_output import adapter_name_for, job_kind, model_spec
from service.registry.serving import apply_verdicts, serving_verdicts
from service.registry.tensors import check_adapter_config, check_lora_tensors, read_tensor_index
from service.schemas import Adapter, AdapterResult, FileRef, json_safe
from service.schemas.webhooks import WebhookEvent
from service.webhooks.outbox import enqueue

log = logging.getLogger(__name__)


def _next_version(session: Session, project: str, name: str) -> int:
    """Bump the name's counter in one statement; concurrent callers queue on its row lock."""
    stmt = upsert(session, models.AdapterName).values(project=project, name=name, last_version=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[models.AdapterName.project, models.AdapterName.name],
        set_={"last_version": models.AdapterName.last_version + 1},
    ).returning(models.AdapterName.last_version)
    return session.execute(stmt).scalar_one()


def _raise_counter(session: Session, project: str, name: str, version: int) -> None:
    """Make the name's counter at least `version` (a restored version is never reissued)."""
    stmt = upsert(session, models.AdapterName).values(
        project=project, name=name, last_version=version
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[models.AdapterName.project, models.AdapterName.name],
        set_={"last_version": case(
            (models.AdapterName.last_version < version, version),
            else_=models.AdapterName.last_version,
        )},
    )
    session.execute(stmt)


def lock_name(session: Session, project: str, name: str) -> None:
    """Take the name's counter row (creating it at 0) so that what this transaction reads
    about the name's versions stays true until it commits."""
    stmt = upsert(session, models.AdapterName).values(project=project, name=name, last_version=0)
    stmt = stmt.on_conflict_do_update(
        index_elements=[models.AdapterName.project, models.AdapterName.name],
        set_={"last_version": models.AdapterName.last_version},
    )
    session.execute(stmt)


@dataclass
class CheckedFiles:
    """Files that passed every registry rule, with what they say about the adapter."""

    files: list[FileRef]
    rank: int | None
    alpha: float | None
    target_modules: list[str]
    lora_modules: int = 0
    serving: dict[str, Any] | None = None  # service/registry/serving.py; LoRA only
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        self.digest = content_digest(self.files)


def check_adapter_files(
    store: ArtifactStore,
    kind: Literal["lora", "full"],
    files: Sequence[FileRef],
    *,
    rank: int | None = None,
    alpha: float | None = None,
    target_modules: Sequence[str] = (),
) -> CheckedFiles:
    """The registry's rules for a LoRA adapter or a full model: safe names, no pickles,
    sniffed formats, stored sizes; for LoRA exactly the PEFT pair, a valid config, and every
    tensor's shape consistent with its rank. `rank`, `alpha`, `target_modules` are what the
    producer announces (checked against the config, or read from it when not given)."""
    checked = check_files(store, files)
    targets = list(target_modules)
    if kind == "full":
        names = {ref.name for ref in checked}
        if "config.json" not in names or not any(n.endswith(".safetensors") for n in names):
            raise InvalidArtifact(
                "a full model needs config.json and its weights as .safetensors; "
                f"got {sorted(names)}"
            )
        return CheckedFiles(checked, None, None, targets)
    names = sorted(ref.name for ref in checked)
    if set(names) != PEFT_FILES:
        raise InvalidArtifact(
            f"a LoRA adapter is exactly {ADAPTER_CONFIG} + {ADAPTER_WEIGHTS}; got {names}"
        )
    by_name = {ref.name: ref for ref in checked}
    config = read_json_blob(store, by_name[ADAPTER_CONFIG])
    config_rank = check_adapter_config(config)
    if rank is not None and config_rank != rank:
        raise InvalidArtifact(f"rank {rank} disagrees with r={config_rank} in {ADAPTER_CONFIG}")
    tensors = read_tensor_index(store, by_name[ADAPTER_WEIGHTS])
    modules = check_lora_tensors(tensors, config)
    config_alpha: Any = config.get("lora_alpha")
    if alpha is None and isinstance(config_alpha, int | float):
        alpha = json_safe(float(min(config_alpha, 1e300)))  # a Float column holds it
    if not targets:
        listed = config.get("target_modules")
        targets = [listed] if isinstance(listed, str) else [str(t) for t in listed or []]
    return CheckedFiles(checked, config_rank, alpha, targets, lora_modules=modules,
                        serving=serving_verdicts(config, tensors))


def insert_adapter(
    session: Session,
    checked: CheckedFiles,
    *,
    project: str,
    name: str,
    kind: str,
    base_model: str,
    source: Literal["job", "import"],
    job_id: str | None = None,
    parent_adapter_id: str | None = None,
    base_fingerprint: str | None = None,
    metrics: dict[str, Any] | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    restore: tuple[str, int, datetime] | None = None,
) -> models.Adapter:
    """Add checked files as the next version of `name`, with their file rows; `restore`
    (id, version, created_at) keeps those of an exported adapter instead."""
    if restore is None:
        adapter_id, version, created_at = new_id("ad"), _next_version(session, project, name), utcnow()
    else:
        adapter_id, version, created_at = restore
        _raise_counter(session, project, name, version)
    row = models.Adapter(
        id=adapter_id,
        name=name,
        project=project,
        version=version,
        kind=kind,
        base_model=base_model,
        base_fingerprint=base_fingerprint,
        rank=checked.rank,
        alpha=checked.alpha,
        target_modules=checked.target_modules,
        job_id=job_id,
        parent_adapter_id=parent_adapter_id,
        metrics=metrics,
        created_at=created_at,
        source=source,
        digest=checked.digest,
        description=description,
        tags=dict(tags or {}),
    )
    apply_verdicts(row, checked.serving)
    session.add(row)
    session.flush()
    session.add_all(
        models.AdapterFile(adapter_id=row.id, name=f.name, sha256=f.sha256, size=f.size)
        for f in checked.files
    )
    session.flush()
    # webhooks: the outbox row commits with the adapter (every way in comes through here)
    enqueue(session, project=project, event=WebhookEvent.adapter_registered,
            data=lambda: to_adapters(session, [row], None)[0].model_dump(mode="json"))
    return row


def register_adapter(
    session: Session,
    job_row: models.Job,
    result: AdapterResult,
    *,
    store: ArtifactStore,
    base_url: str | None = None,
) -> Adapter:
    """Register a job's output as the next version of its name; sets `job.adapter_id`.

    Idempotent: a job that already has an adapter gets it back. Every file must already
    be in the store; on any error nothing is registered (the caller rolls back).
    """
    if job_row.adapter_id:
        existing = session.get(models.Adapter, job_row.adapter_id)
        if existing is not None:
            return to_adapters(session, [existing], base_url)[0]
    spec = model_spec(job_row)
    expected = job_kind(job_row)
    if result.kind != expected:
        raise InvalidArtifact(
            f"job {job_row.id} is a {'LoRA' if expected == 'lora' else 'full'} fine-tuning job; "
            f"it cannot register a result of kind {result.kind!r}"
        )
    checked = check_adapter_files(
        store, result.kind, result.files, rank=result.rank, alpha=result.alpha,
        target_modules=result.target_modules,
    )
    parent = job_row.parent_adapter_id
    if parent and session.get(models.Adapter, parent) is None:
        log.warning("job %s continued from adapter %s, which is gone", job_row.id, parent)
        parent = None
    name = adapter_name_for(job_row)
    row = insert_adapter(
        session, checked, project=job_row.project, name=name, kind=result.kind,
        base_model=spec.get("model_path", ""), source="job", job_id=job_row.id,
        parent_adapter_id=parent, base_fingerprint=result.base_fingerprint,
        metrics=result.metrics,
    )
    job_row.adapter_id = row.id
    session.flush()
    log.info("registered adapter %s (%s v%d) from job %s", row.id, name, row.version, job_row.id)
    return to_adapters(session, [row], base_url)[0]
