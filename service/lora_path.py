"""`lora_path`: every accepted form, parsed without I/O and resolved against the registry.

Forms (README, "The job spec"; docs/architecture.md follows one through the system):

| form | example |
|---|---|
| adapter id | `ad_01jd8x4k2m9q7r5t3v1w0y6z8a` |
| name and version | `support-bot:3` |
| name and alias (`latest`: newest version) | `support-bot@prod` |
| the adapter's URL on this service | `https://lp.example/adapters/ad_01jd…` |
| checkpoint id | `ck_01jd8x4k2m9q7r5t3v1w0y6z8a` |
| the checkpoint's URL on this service | `https://lp.example/jobs/job_01jd…/checkpoints/ck_01jd…` |
| a worker-local PEFT folder (under `lora_path_roots`) | `/mnt/adapters/support-bot` |

URLs are never fetched: only their path is read, so a lora_path cannot make the server
reach another host. Local paths are checked lexically and against the real paths of the
allowed roots, here and only here.

A lora_path is parsed and resolved once, at submit: what it names is stored in the job's
columns (`lora_source_kind`, `parent_adapter_id`, `source_checkpoint_id`,
`lora_local_path`), and the claim builds the worker's inputs from them (service/inputs.py).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from db import models
from service.errors import InvalidLoraPath
from service.ids import has_prefix
from service.names import NAME_PATTERN
from service.paths import outside_roots
from service.registry.adapters import latest_version
from service.registry.aliases import LATEST
from service.registry.files import peft_pair
from service.registry.job_output import model_spec
from service.schemas import FileRef
from service.settings import Settings
from service.spec import JobSpec

LOC = "actor.model.lora_path"
_NAME_VERSION = re.compile(rf"({NAME_PATTERN}):([0-9]{{1,9}})")
_NAME_ALIAS = re.compile(rf"({NAME_PATTERN})@({NAME_PATTERN})")
LoraKind = Literal["adapter", "checkpoint", "local"]


@dataclass(frozen=True)
class LoraRef:
    """A parsed lora_path; exactly the fields of its kind are set."""

    kind: LoraKind
    adapter_id: str | None = None
    name: str | None = None
    version: int | None = None
    alias: str | None = None
    checkpoint_id: str | None = None
    job_id: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class ResolvedLora:
    """What a lora_path resolved to at submit: the job's columns store exactly this."""

    kind: LoraKind
    parent_adapter_id: str | None = None  # the adapter the job's line descends from
    checkpoint_id: str | None = None  # kind `checkpoint`
    local_path: str | None = None  # kind `local`: the real path, checked against the roots


def _error(lora_path: str, message: str, type_: str) -> InvalidLoraPath:
    detail = f"lora_path {lora_path!r}: {message}"
    return InvalidLoraPath(detail, errors=[{"loc": LOC, "msg": detail, "type": type_}])


def parse_lora_path(value: str) -> LoraRef:
    """Recognise the form of a lora_path (no database, no network); 422 if none fits."""
    if not value or "\x00" in value or value != value.strip():
        raise _error(value, "empty, or with a NUL byte or surrounding spaces", "lora_path_form")
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", value):
        return _parse_url(value)
    if value.startswith("/"):
        return LoraRef(kind="local", path=value)
    if has_prefix(value, "ad"):
        return LoraRef(kind="adapter", adapter_id=value)
    if has_prefix(value, "ck"):
        return LoraRef(kind="checkpoint", checkpoint_id=value)
    if m := _NAME_VERSION.fullmatch(value):
        return LoraRef(kind="adapter", name=m.group(1), version=int(m.group(2)))
    if m := _NAME_ALIAS.fullmatch(value):
        return LoraRef(kind="adapter", name=m.group(1), alias=m.group(2))
    raise _error(
        value,
        "not a form loraplane accepts: an adapter id (ad_…), name:version, name@alias, "
        "an adapter or checkpoint URL of this service, a checkpoint id (ck_…), or an "
        "absolute worker-local folder under the allowed roots",
        "lora_path_form",
    )


def _parse_url(value: str) -> LoraRef:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _error(value, "only http(s) URLs of this service are accepted", "lora_path_form")
    if parts.query or parts.fragment:
        raise _error(value, "a lora_path URL takes no query or fragment", "lora_path_form")
    segments = [unquote(s) for s in parts.path.rstrip("/").split("/")]
    if len(segments) >= 2 and segments[-2] == "adapters" and has_prefix(segments[-1], "ad"):
        return LoraRef(kind="adapter", adapter_id=segments[-1])
    if (
        len(segments) >= 4
        and segments[-4] == "jobs"
        and segments[-2] == "checkpoints"
        and has_prefix(segments[-3], "job")
        and has_prefix(segments[-1], "ck")
    ):
        return LoraRef(kind="checkpoint", job_id=segments[-3], checkpoint_id=segments[-1])
    raise _error(
        value,
        "a URL must be an adapter's `…/adapters/{ad_id}` or a checkpoint's "
        "`…/jobs/{job_id}/checkpoints/{ck_id}`, as this service returns them",
        "lora_path_form",
    )


def check_local_path(value: str, settings: Settings) -> str:
    """The normalised real path of a worker-local folder, if it lies under an allowed root."""
    reason = outside_roots(value, settings.lora_path_roots)
    if reason:
        raise _error(value, f"a worker-local adapter folder {reason} (LORAPLANE_LORA_PATH_ROOTS)",
                     "lora_path_outside_roots")
    return os.path.realpath(value)


def find_adapter(session: Session, ref: LoraRef, lora_path: str) -> models.Adapter:
    """The LoRA adapter a reference names, locked against a concurrent delete until commit."""
    row = _find_adapter(session, ref, lora_path)
    if row.kind != "lora":
        raise _error(
            lora_path,
            f"adapter {row.id} ({row.name} v{row.version}) is a full fine-tuned model "
            "(kind: full), not a LoRA adapter",
            "lora_path_full",
        )
    return row


def _find_adapter(session: Session, ref: LoraRef, lora_path: str) -> models.Adapter:
    stmt = select(models.Adapter).with_for_update(read=True)
    if ref.adapter_id is not None:
        row = session.scalar(stmt.where(models.Adapter.id == ref.adapter_id))
        if row is None:
            raise _error(
                lora_path, f"no adapter {ref.adapter_id} in the registry", "lora_path_unknown"
            )
        return row
    assert ref.name is not None
    if ref.version is not None:
        row = session.scalar(
            stmt.where(models.Adapter.name == ref.name, models.Adapter.version == ref.version)
        )
        if row is None:
            latest = _latest(session, ref.name, lora_path)
            raise _error(
                lora_path,
                f"adapter {ref.name!r} has no version {ref.version} "
                f"(the newest is {latest.version})",
                "lora_path_unknown",
            )
        return row
    if ref.alias == LATEST:
        target = _latest(session, ref.name, lora_path).id
    else:
        target = session.scalar(
            select(models.Alias.adapter_id).where(
                models.Alias.name == ref.name, models.Alias.alias == ref.alias
            )
        )
        if target is None:
            _latest(session, ref.name, lora_path)  # an unknown name says so
            raise _error(
                lora_path, f"adapter {ref.name!r} has no alias {ref.alias!r}", "lora_path_unknown"
            )
    row = session.scalar(stmt.where(models.Adapter.id == target))
    if row is None:  # deleted between the two reads
        raise _error(
            lora_path, f"alias {ref.name}@{ref.alias} points to nothing", "lora_path_unknown"
        )
    return row


def _latest(session: Session, name: str, lora_path: str) -> models.Adapter:
    """The newest version of `name`; 422 when the registry has no adapter of that name."""
    latest = latest_version(session, name)
    if latest is None:
        raise _error(lora_path, f"no adapter named {name!r} in the registry", "lora_path_unknown")
    return latest


def find_checkpoint(
    session: Session, ref: LoraRef, lora_path: str
) -> tuple[models.Checkpoint, models.Job, dict[str, FileRef]]:
    """The unpruned LoRA checkpoint a reference names, its job, and its PEFT pair by base name."""
    row = session.get(models.Checkpoint, ref.checkpoint_id)
    if row is None or (ref.job_id is not None and row.job_id != ref.job_id):
        where = f" of job {ref.job_id}" if ref.job_id else ""
        raise _error(lora_path, f"no checkpoint {ref.checkpoint_id}{where}", "lora_path_unknown")
    if row.pruned:
        raise _error(
            lora_path,
            f"checkpoint {row.id} (step {row.step}) was pruned when its job finished; "
            "continue from the job's adapter or a later checkpoint",
            "lora_path_unknown",
        )
    job = session.get(models.Job, row.job_id)
    assert job is not None  # checkpoints cascade with their job
    pair = peft_pair(FileRef.model_validate(f) for f in row.files)
    if not model_spec(job).get("is_lora") or pair is None:
        raise _error(
            lora_path,
            f"checkpoint {row.id} of job {job.id} holds no LoRA adapter (full fine-tuning); "
            "lora_path needs a LoRA adapter",
            "lora_path_full",
        )
    return row, job, pair


def job_rank(session: Session, job: models.Job) -> int | None:
    """The LoRA rank a job trains with: its spec's, else the adapter it continued from."""
    rank = model_spec(job).get("lora_rank")
    if rank is None and job.parent_adapter_id:
        parent = session.get(models.Adapter, job.parent_adapter_id)
        rank = parent.rank if parent is not None else None
    return rank


def _check_compatible(
    lora_path: str, what: str, *, base_model: str, rank: int | None, spec: JobSpec
) -> None:
    model = spec.actor.model
    if base_model != model.model_path:
        raise _error(
            lora_path,
            f"{what} was trained on base model {base_model!r}, but this job's model_path is "
            f"{model.model_path!r}",
            "lora_path_base_model",
        )
    if model.lora_rank is not None and rank is not None and model.lora_rank != rank:
        raise _error(
            lora_path,
            f"lora_rank {model.lora_rank} disagrees with the rank of {what} (r={rank}); "
            f"set lora_rank: {rank} or leave it out",
            "lora_path_rank",
        )


def resolve_for_submit(session: Session, spec: JobSpec, settings: Settings) -> ResolvedLora | None:
    """Check a spec's lora_path at submit and say what it names, for the job's columns.

    Call inside the submitting transaction: the adapter stays share-locked until commit,
    so a concurrent DELETE /adapters/{id} cannot slip between check and insert.
    """
    lora_path = spec.actor.model.lora_path
    if lora_path is None:
        return None
    ref = parse_lora_path(lora_path)
    if ref.kind == "local":
        return ResolvedLora(kind="local", local_path=check_local_path(lora_path, settings))
    if ref.kind == "checkpoint":
        row, job, _ = find_checkpoint(session, ref, lora_path)
        _check_compatible(
            lora_path,
            f"checkpoint {row.id} (job {job.id}, step {row.step})",
            base_model=model_spec(job).get("model_path", ""),
            rank=job_rank(session, job),
            spec=spec,
        )
        return ResolvedLora(
            kind="checkpoint", parent_adapter_id=job.parent_adapter_id, checkpoint_id=row.id
        )
    adapter = find_adapter(session, ref, lora_path)
    what = f"adapter {adapter.id} ({adapter.name} v{adapter.version})"
    _check_compatible(lora_path, what, base_model=adapter.base_model, rank=adapter.rank, spec=spec)
    return ResolvedLora(kind="adapter", parent_adapter_id=adapter.id)
