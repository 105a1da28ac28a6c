"""Registration: a finished job's output becomes the next version of its name."""

from __future__ import annotations

import logging

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
    config_rank_of,
    read_json_blob,
)
from service.registry.job_output import adapter_name_for, job_kind, model_spec
from service.schemas import Adapter, AdapterResult, json_safe

log = logging.getLogger(__name__)


def _next_version(session: Session, project: str, name: str) -> int:
    """Bump the name's counter in one statement; concurrent callers queue on its row lock."""
    stmt = upsert(session, models.AdapterName).values(project=project, name=name, last_version=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[models.AdapterName.project, models.AdapterName.name],
        set_={"last_version": models.AdapterName.last_version + 1},
    ).returning(models.AdapterName.last_version)
    return session.execute(stmt).scalar_one()


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
    files = check_files(store, result.files)
    rank, alpha, targets = result.rank, result.alpha, list(result.target_modules)
    if result.kind == "lora":
        names = sorted(ref.name for ref in files)
        if set(names) != PEFT_FILES:
            raise InvalidArtifact(
                f"a LoRA adapter is exactly {ADAPTER_CONFIG} + {ADAPTER_WEIGHTS}; got {names}"
            )
        config = read_json_blob(store, next(f for f in files if f.name == ADAPTER_CONFIG))
        config_rank = config_rank_of(config)
        if rank is not None and config_rank != rank:
            raise InvalidArtifact(f"rank {rank} disagrees with r={config_rank} in {ADAPTER_CONFIG}")
        rank = config_rank
        config_alpha = config.get("lora_alpha")
        if alpha is None and isinstance(config_alpha, int | float) and not isinstance(
            config_alpha, bool
        ):
            alpha = json_safe(float(min(config_alpha, 1e300)))  # a Float column holds it
            alpha = alpha if alpha is not None and alpha > 0 else None
        if not targets and isinstance(config.get("target_modules"), list):
            targets = [str(t) for t in config["target_modules"]]
    else:
        names = {ref.name for ref in files}
        if "config.json" not in names or not any(n.endswith(".safetensors") for n in names):
            raise InvalidArtifact(
                "a full model needs config.json and its weights as .safetensors; "
                f"got {sorted(names)}"
            )
        rank = alpha = None

    parent = job_row.parent_adapter_id
    if parent and session.get(models.Adapter, parent) is None:
        log.warning("job %s continued from adapter %s, which is gone", job_row.id, parent)
        parent = None
    name = adapter_name_for(job_row)
    row = models.Adapter(
        id=new_id("ad"),
        name=name,
        project=job_row.project,
        version=_next_version(session, job_row.project, name),
        kind=result.kind,
        base_model=spec.get("model_path", ""),
        base_fingerprint=result.base_fingerprint,
        rank=rank,
        alpha=alpha,
        target_modules=targets,
        job_id=job_row.id,
        parent_adapter_id=parent,
        metrics=result.metrics,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    session.add_all(
        models.AdapterFile(adapter_id=row.id, name=f.name, sha256=f.sha256, size=f.size)
        for f in files
    )
    job_row.adapter_id = row.id
    session.flush()
    log.info("registered adapter %s (%s v%d) from job %s", row.id, name, row.version, job_row.id)
    return to_adapters(session, [row], base_url)[0]
