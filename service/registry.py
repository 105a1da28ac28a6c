"""The adapter registry: registration, reads, aliases, checkpoints, deletion and blob GC.

Functions take a `session` and only flush; the caller owns the transaction. Blob garbage
is never deleted inside a transaction (a rollback would leave rows pointing at nothing):
functions that drop references return the sha256s that may have become garbage, and the
caller passes them to `collect_garbage` after its commit.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field
from sqlalchemy import Text, cast, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db import models
from db.base import utcnow
from service.artifacts import ArtifactStore
from service.domain import (
    MAX_BIGINT,
    MAX_INT,
    JobState,
    Page,
    decode_cursor,
    encode_cursor,
    json_safe,
)
from service.errors import Conflict, InvalidArtifact, InvalidRequest, NotFound
from service.ids import new_id
from service.names import is_valid_name
from service.paging import newest_first

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PEFT_FILES = frozenset({ADAPTER_CONFIG, ADAPTER_WEIGHTS})
# Formats that are (or may hide) pickles: never accepted, whatever the bytes say.
PICKLE_SUFFIXES = frozenset(
    {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".dill", ".npy", ".npz"}
)
# Jobs in these states hold on to the adapter they continue from.
HOLDING_STATES = (JobState.queued.value, JobState.running.value, JobState.cancelling.value)
LATEST = "latest"  # a virtual alias: the newest version of a name
MAX_LINEAGE = 1000
MAX_CONFIG_BYTES = 1 << 20

SHA256 = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the bytes, lowercase hex.")


# ---------------------------------------------------------------------------- domain


class FileRef(BaseModel):
    """A file of an adapter or checkpoint: relative path, content hash, size."""

    name: str = Field(min_length=1, max_length=255, description="Relative path, `/`-separated.")
    sha256: str = SHA256
    size: int = Field(ge=0, le=MAX_BIGINT)


class AdapterResult(BaseModel):
    """What a finished training run hands the registry (its files are already stored)."""

    kind: Literal["lora", "full"]
    files: list[FileRef] = Field(min_length=1)
    rank: int | None = Field(
        None, ge=1, le=MAX_INT, description="LoRA rank r; read from adapter_config.json if null."
    )
    alpha: float | None = Field(None, gt=0, allow_inf_nan=False)
    target_modules: list[str] = Field(
        default_factory=list, description="Module names actually wrapped."
    )
    base_fingerprint: str | None = Field(None, max_length=64)
    metrics: dict[str, Any] | None = None


class LineageEntry(BaseModel):
    id: str
    name: str
    version: int


class Adapter(BaseModel):
    """A registered adapter (or full fine-tuned model) as clients see it."""

    id: str
    name: str
    version: int = Field(description="Monotonic per name, from 1.")
    kind: Literal["lora", "full"]
    base_model: str = Field(description="The `model_path` it was trained on.")
    base_fingerprint: str | None
    rank: int | None
    alpha: float | None
    target_modules: list[str]
    files: list[FileRef]
    job_id: str | None
    parent_adapter_id: str | None
    lineage: list[LineageEntry] = Field(description="Ancestors, nearest first, back to the first.")
    metrics: dict[str, Any] | None
    aliases: list[str]
    created_at: datetime
    lora_path: str = Field(description="Pass as `actor.model.lora_path` to continue from it.")
    download_url: str = Field(description="The PEFT folder as one tar stream.")


class Alias(BaseModel):
    name: str
    alias: str
    adapter_id: str
    version: int
    updated_at: datetime


class Checkpoint(BaseModel):
    """A checkpoint a job saved; LoRA ones can be continued from with their `lora_path`."""

    id: str
    job_id: str
    step: int
    attempt: int
    size: int
    kind: Literal["lora", "full"]
    files: list[FileRef]
    lora_path: str | None = Field(
        description="Pass as `actor.model.lora_path` to continue from it; null when it holds "
        "no PEFT adapter (full fine-tuning)."
    )
    created_at: datetime


# ---------------------------------------------------------------------------- urls


def adapter_lora_path(adapter_id: str, base_url: str | None) -> str:
    """The adapter's URL on this service; its bare id when no base URL is known."""
    return f"{base_url.rstrip('/')}/adapters/{adapter_id}" if base_url else adapter_id


def checkpoint_lora_path(job_id: str, checkpoint_id: str, base_url: str | None) -> str:
    """The checkpoint's URL on this service; its bare id when no base URL is known."""
    if not base_url:
        return checkpoint_id
    return f"{base_url.rstrip('/')}/jobs/{job_id}/checkpoints/{checkpoint_id}"


def adapter_file_path(adapter_id: str, name: str) -> str:
    """Server-relative download path of one adapter file."""
    return f"/adapters/{adapter_id}/files/{quote(name)}"


def checkpoint_file_path(job_id: str, checkpoint_id: str, name: str) -> str:
    """Server-relative download path of one checkpoint file."""
    return f"/jobs/{job_id}/checkpoints/{checkpoint_id}/files/{quote(name)}"


# ---------------------------------------------------------------------------- files


def validate_file_name(name: str) -> str:
    """A plain relative `/`-separated path: no `..`, `.` or empty parts, not absolute."""
    if not isinstance(name, str) or not name or len(name) > 255:
        raise InvalidArtifact(f"file name {name!r} must be 1 to 255 characters")
    if "\\" in name or any(not c.isprintable() for c in name):
        raise InvalidArtifact(f"file name {name!r} contains a backslash or a control character")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise InvalidArtifact(f"file name {name!r} is absolute; only relative names are accepted")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise InvalidArtifact(f"file name {name!r} has an empty, `.` or `..` part")
    if PurePosixPath(name).suffix.lower() in PICKLE_SUFFIXES:
        raise InvalidArtifact(
            f"file {name!r} has a pickle-based format; only safetensors and plain text/JSON "
            "files are accepted"
        )
    return name


def _sniff(store: ArtifactStore, ref: FileRef) -> None:
    """Refuse bytes that are not what the name says: safetensors headers, no pickles/zips."""
    with store.open(ref.sha256) as f:
        head = f.read(9)
    if ref.name.endswith(".safetensors"):
        header_len = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
        if header_len < 2 or 8 + header_len > ref.size or head[8:9] != b"{":
            raise InvalidArtifact(f"file {ref.name!r} is not a safetensors file")
    elif head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise InvalidArtifact(f"file {ref.name!r} is a pickle; pickles are never accepted")
    elif head[:4] == b"PK\x03\x04":
        raise InvalidArtifact(f"file {ref.name!r} is a zip archive (torch.save?); not accepted")


def check_files(store: ArtifactStore, files: Sequence[FileRef]) -> list[FileRef]:
    """Validate names and formats, and that every blob is stored with the announced size."""
    if not files:
        raise InvalidArtifact("no files given")
    seen: set[str] = set()
    for ref in files:
        validate_file_name(ref.name)
        if ref.name in seen:
            raise InvalidArtifact(f"file {ref.name!r} is listed twice")
        seen.add(ref.name)
    missing = [ref.name for ref in files if not store.exists(ref.sha256)]
    if missing:
        raise InvalidArtifact(
            f"files not uploaded yet (no blob with their sha256): {', '.join(missing)}",
            code="blob_missing",
        )
    for ref in files:
        stored = store.size(ref.sha256)
        if stored != ref.size:
            raise InvalidArtifact(
                f"file {ref.name!r} is announced with {ref.size} bytes; its blob has {stored}"
            )
        _sniff(store, ref)
    return sorted(files, key=lambda ref: ref.name)


def peft_pair(files: Iterable[FileRef]) -> dict[str, FileRef] | None:
    """The `adapter_config.json` + `adapter_model.safetensors` of one folder, by base name.

    When several folders hold both, the shallowest (then alphabetically first) wins.
    """
    folders: dict[str, dict[str, FileRef]] = {}
    for ref in files:
        folder, _, base = ref.name.rpartition("/")
        if base in PEFT_FILES:
            folders.setdefault(folder, {})[base] = ref
    complete = [f for f, pair in folders.items() if len(pair) == 2]
    if not complete:
        return None
    best = min(complete, key=lambda f: (f.count("/") + bool(f), f))
    return folders[best]


def _read_json_blob(store: ArtifactStore, ref: FileRef) -> dict[str, Any]:
    if ref.size > MAX_CONFIG_BYTES:
        raise InvalidArtifact(f"{ref.name} is {ref.size} bytes; too large for a config file")
    with store.open(ref.sha256) as f:
        raw = f.read(MAX_CONFIG_BYTES + 1)
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidArtifact(f"{ref.name} is not valid UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise InvalidArtifact(f"{ref.name} is not a JSON object")
    return value


def config_rank_of(config: dict[str, Any], where: str = ADAPTER_CONFIG) -> int:
    """The LoRA rank `r` an adapter_config.json must give (peft would silently assume 8)."""
    rank = config.get("r")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= MAX_INT:
        raise InvalidArtifact(
            f"{where} must give the LoRA rank `r` as a positive integer; got {rank!r}"
        )
    return rank


# ---------------------------------------------------------------------------- helpers


def model_spec(job: models.Job) -> dict[str, Any]:
    """`actor.model` of a stored job spec."""
    return (job.spec or {}).get("actor", {}).get("model", {})


def _job_kind(job: models.Job) -> Literal["lora", "full"]:
    """`lora` for a LoRA job, `full` for full fine-tuning."""
    return "lora" if model_spec(job).get("is_lora") else "full"


def adapter_name_for(job: models.Job) -> str:
    """`runner.experiment_name`, else the job's name, else its id."""
    runner = (job.spec or {}).get("runner", {}) or {}
    return runner.get("experiment_name") or job.name or job.id


def _insert(session: Session, model: type) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"no upsert for {dialect}")


def _next_version(session: Session, project: str, name: str) -> int:
    """Bump the name's counter in one statement; concurrent callers queue on its row lock."""
    stmt = _insert(session, models.AdapterName).values(project=project, name=name, last_version=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[models.AdapterName.project, models.AdapterName.name],
        set_={"last_version": models.AdapterName.last_version + 1},
    ).returning(models.AdapterName.last_version)
    return session.execute(stmt).scalar_one()


def adapter_row(
    session: Session, adapter_id: str, *, lock: Literal["share", "update"] | None = None
) -> models.Adapter:
    """The adapter's row (optionally locked against a concurrent delete); 404 if absent."""
    stmt = select(models.Adapter).where(models.Adapter.id == adapter_id)
    if lock is not None:
        stmt = stmt.with_for_update(read=lock == "share")
    row = session.scalar(stmt)
    if row is None:
        raise NotFound(f"no adapter {adapter_id!r}")
    return row


def _files_of(session: Session, adapter_ids: Sequence[str]) -> dict[str, list[FileRef]]:
    result: dict[str, list[FileRef]] = {i: [] for i in adapter_ids}
    if adapter_ids:
        f = models.AdapterFile
        rows = session.execute(  # columns, not ORM objects: this runs on every adapter read
            select(f.adapter_id, f.name, f.sha256, f.size)
            .where(f.adapter_id.in_(adapter_ids))
            .order_by(f.name)
        )
        for adapter_id, name, sha256, size in rows:
            result[adapter_id].append(FileRef(name=name, sha256=sha256, size=size))
    return result


def _aliases_of(session: Session, adapter_ids: Sequence[str]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {i: [] for i in adapter_ids}
    if adapter_ids:
        rows = session.execute(
            select(models.Alias.adapter_id, models.Alias.alias)
            .where(models.Alias.adapter_id.in_(adapter_ids))
            .order_by(models.Alias.alias)
        )
        for adapter_id, alias in rows:
            result[adapter_id].append(alias)
    return result


def _lineages(session: Session, rows: Sequence[models.Adapter]) -> dict[str, list[LineageEntry]]:
    """Each row's ancestors, fetched level by level for the whole batch."""
    known: dict[str, tuple[str, int, str | None]] = {
        r.id: (r.name, r.version, r.parent_adapter_id) for r in rows
    }
    frontier = {r.parent_adapter_id for r in rows if r.parent_adapter_id} - known.keys()
    for _ in range(MAX_LINEAGE):
        if not frontier:
            break
        fetched = session.execute(
            select(
                models.Adapter.id,
                models.Adapter.name,
                models.Adapter.version,
                models.Adapter.parent_adapter_id,
            ).where(models.Adapter.id.in_(frontier))
        ).all()
        for adapter_id, name, version, parent in fetched:
            known[adapter_id] = (name, version, parent)
        frontier = {p for *_, p in fetched if p} - known.keys()
    result: dict[str, list[LineageEntry]] = {}
    for row in rows:
        chain: list[LineageEntry] = []
        seen = {row.id}
        parent = row.parent_adapter_id
        while parent and parent in known and parent not in seen and len(chain) < MAX_LINEAGE:
            seen.add(parent)
            name, version, grandparent = known[parent]
            chain.append(LineageEntry(id=parent, name=name, version=version))
            parent = grandparent
        result[row.id] = chain
    return result


def _to_adapters(
    session: Session, rows: Sequence[models.Adapter], base_url: str | None
) -> list[Adapter]:
    ids = [r.id for r in rows]
    files, aliases, lineages = (
        _files_of(session, ids),
        _aliases_of(session, ids),
        _lineages(session, rows),
    )
    return [
        Adapter(
            id=r.id,
            name=r.name,
            version=r.version,
            kind=r.kind,  # type: ignore[arg-type]
            base_model=r.base_model,
            base_fingerprint=r.base_fingerprint,
            rank=r.rank,
            alpha=r.alpha,
            target_modules=list(r.target_modules or []),
            files=files[r.id],
            job_id=r.job_id,
            parent_adapter_id=r.parent_adapter_id,
            lineage=lineages[r.id],
            metrics=r.metrics,
            aliases=aliases[r.id],
            created_at=r.created_at,
            lora_path=adapter_lora_path(r.id, base_url),
            download_url=f"{(base_url or '').rstrip('/')}/adapters/{r.id}/archive",
        )
        for r in rows
    ]


# ---------------------------------------------------------------------------- registration


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
            return _to_adapters(session, [existing], base_url)[0]
    spec = model_spec(job_row)
    expected = _job_kind(job_row)
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
        config = _read_json_blob(store, next(f for f in files if f.name == ADAPTER_CONFIG))
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
    return _to_adapters(session, [row], base_url)[0]


# ---------------------------------------------------------------------------- reads


def get_adapter(session: Session, adapter_id: str, *, base_url: str | None = None) -> Adapter:
    return _to_adapters(session, [adapter_row(session, adapter_id)], base_url)[0]


def list_adapters(
    session: Session,
    *,
    name: str | None = None,
    base_model: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    base_url: str | None = None,
) -> Page[Adapter]:
    """Newest first, keyed on the time-ordered id."""
    stmt = select(models.Adapter)
    if name is not None:
        stmt = stmt.where(models.Adapter.name == name)
    if base_model is not None:
        stmt = stmt.where(models.Adapter.base_model == base_model)
    if kind is not None:
        stmt = stmt.where(models.Adapter.kind == kind)
    rows, next_cursor = newest_first(session, stmt, models.Adapter.id, limit=limit, cursor=cursor)
    return Page[Adapter](items=_to_adapters(session, rows, base_url), next_cursor=next_cursor)


def adapter_file(session: Session, adapter_id: str, name: str) -> FileRef:
    """One file of an adapter; 404 naming the files it has."""
    adapter_row(session, adapter_id)
    row = session.get(models.AdapterFile, (adapter_id, name))
    if row is None:
        names = [f.name for f in _files_of(session, [adapter_id])[adapter_id]]
        raise NotFound(f"adapter {adapter_id} has no file {name!r}; it has {names}")
    return FileRef(name=row.name, sha256=row.sha256, size=row.size)


def adapter_files(session: Session, adapter_id: str) -> list[FileRef]:
    """The files of an adapter the caller has already read, by name (none for an unknown id)."""
    return _files_of(session, [adapter_id])[adapter_id]


def latest_version(session: Session, name: str) -> models.Adapter | None:
    return session.scalar(
        select(models.Adapter)
        .where(models.Adapter.name == name)
        .order_by(models.Adapter.version.desc())
        .limit(1)
    )


# ---------------------------------------------------------------------------- aliases


def validate_alias(alias: str) -> str:
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
    return Alias(
        name=row.name,
        alias=row.alias,
        adapter_id=row.adapter_id,
        version=version,
        updated_at=row.updated_at,
    )


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
    now = utcnow()
    stmt = _insert(session, models.Alias).values(
        project=target.project, name=name, alias=alias, adapter_id=adapter_id, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[models.Alias.project, models.Alias.name, models.Alias.alias],
        set_={"adapter_id": adapter_id, "updated_at": now},
    )
    session.execute(stmt)
    session.flush()
    return Alias(
        name=name, alias=alias, adapter_id=adapter_id, version=target.version, updated_at=now
    )


def delete_alias(session: Session, name: str, alias: str) -> None:
    result = session.execute(
        delete(models.Alias).where(models.Alias.name == name, models.Alias.alias == alias)
    )
    if result.rowcount == 0:
        raise NotFound(f"no alias {alias!r} of adapter name {name!r}")
    session.flush()


# ---------------------------------------------------------------------------- deletion and GC


def delete_adapter(session: Session, adapter_id: str) -> list[str]:
    """Delete an adapter nothing holds on to; returns blobs that may now be garbage.

    Refused (409) while an alias points to it or a queued/running/cancelling job continues
    from it. Children keep existing; their `parent_adapter_id` is cleared.
    """
    row = adapter_row(session, adapter_id, lock="update")
    aliases = session.scalars(
        select(models.Alias.alias)
        .where(models.Alias.adapter_id == adapter_id)
        .order_by(models.Alias.alias)
    ).all()
    jobs = session.execute(
        select(models.Job.id, models.Job.state)
        .where(models.Job.parent_adapter_id == adapter_id, models.Job.state.in_(HOLDING_STATES))
        .order_by(models.Job.id)
    ).all()
    if aliases or jobs:
        reasons = []
        if aliases:
            names = ", ".join(f"{row.name}@{a}" for a in aliases)
            verb = "aliases {} point" if len(aliases) > 1 else "alias {} points"
            reasons.append(f"{verb.format(names)} to it")
        if jobs:
            held = ", ".join(f"{j} ({s})" for j, s in jobs)
            verb = "jobs {} continue" if len(jobs) > 1 else "job {} continues"
            reasons.append(f"{verb.format(held)} from it")
        raise Conflict(
            f"adapter {adapter_id} ({row.name} v{row.version}) is in use: {'; '.join(reasons)}. "
            "Move or delete the aliases and let the jobs finish (or cancel them) first.",
            code="adapter_in_use",
        )
    shas = set(
        session.scalars(
            select(models.AdapterFile.sha256).where(models.AdapterFile.adapter_id == adapter_id)
        )
    )
    session.execute(
        update(models.Adapter)
        .where(models.Adapter.parent_adapter_id == adapter_id)
        .values(parent_adapter_id=None)
    )
    session.execute(delete(models.AdapterFile).where(models.AdapterFile.adapter_id == adapter_id))
    session.delete(row)
    session.flush()
    log.info("deleted adapter %s (%s v%d)", adapter_id, row.name, row.version)
    return sorted(shas)


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


# ---------------------------------------------------------------------------- checkpoints


def _to_checkpoint(row: models.Checkpoint, job: models.Job, base_url: str | None) -> Checkpoint:
    files = [FileRef(**f) for f in row.files]
    kind = _job_kind(job)
    resumable = kind == "lora" and peft_pair(files) is not None
    return Checkpoint(
        id=row.id,
        job_id=row.job_id,
        step=row.step,
        attempt=row.attempt,
        size=row.size,
        kind=kind,
        files=files,
        lora_path=checkpoint_lora_path(row.job_id, row.id, base_url) if resumable else None,
        created_at=row.created_at,
    )


def _job(session: Session, job_id: str) -> models.Job:
    row = session.get(models.Job, job_id)
    if row is None:
        raise NotFound(f"no job {job_id!r}")
    return row


def record_checkpoint(
    session: Session,
    job_row: models.Job,
    *,
    step: int,
    attempt: int,
    files: Sequence[FileRef],
    store: ArtifactStore,
    base_url: str | None = None,
) -> Checkpoint:
    """Record a checkpoint whose files are stored; the same (job, step) again returns it.

    Saved again with other files (a later attempt redid the step), the row takes the new
    files; the old ones' blobs are left for a later collection.
    """
    if step < 0:
        raise InvalidArtifact(f"checkpoint step must be >= 0, got {step}")
    refs = check_files(store, files)
    pair = peft_pair(refs) if _job_kind(job_row) == "lora" else None
    if pair is not None:  # a later lora_path may continue from it: its config must say r
        config = pair[ADAPTER_CONFIG]
        config_rank_of(_read_json_blob(store, config), config.name)
    payload = [ref.model_dump() for ref in refs]
    size = sum(ref.size for ref in refs)
    # Serialise writers of this job's checkpoints (the caller usually holds the lock already).
    session.execute(select(models.Job.id).where(models.Job.id == job_row.id).with_for_update())
    row = session.scalar(
        select(models.Checkpoint)
        .where(models.Checkpoint.job_id == job_row.id, models.Checkpoint.step == step)
        .order_by(models.Checkpoint.created_at.desc())
        .limit(1)
    )
    if row is None:
        row = models.Checkpoint(
            id=new_id("ck"),
            project=job_row.project,
            job_id=job_row.id,
            step=step,
            attempt=attempt,
            size=size,
            files=payload,
            pruned=False,
            created_at=utcnow(),
        )
        session.add(row)
    elif row.files != payload or row.pruned:
        row.files, row.size, row.attempt, row.pruned = payload, size, attempt, False
    session.flush()
    return _to_checkpoint(row, job_row, base_url)


def latest_checkpoint(
    session: Session, job_id: str, *, base_url: str | None = None
) -> Checkpoint | None:
    """The job's unpruned checkpoint with the highest step, if any."""
    job = _job(session, job_id)
    row = session.scalar(
        select(models.Checkpoint)
        .where(models.Checkpoint.job_id == job_id, models.Checkpoint.pruned.is_(False))
        .order_by(models.Checkpoint.step.desc())
        .limit(1)
    )
    return None if row is None else _to_checkpoint(row, job, base_url)


def list_checkpoints(
    session: Session,
    job_id: str,
    *,
    limit: int = 100,
    cursor: str | None = None,
    base_url: str | None = None,
) -> Page[Checkpoint]:
    """The job's unpruned checkpoints, by step."""
    job = _job(session, job_id)
    stmt = (
        select(models.Checkpoint)
        .where(models.Checkpoint.job_id == job_id, models.Checkpoint.pruned.is_(False))
        .order_by(models.Checkpoint.step)
        .limit(limit + 1)
    )
    if cursor:
        after = decode_cursor(cursor)
        if not isinstance(after, int) or not -MAX_INT - 1 <= after <= MAX_INT:  # `step` is INTEGER
            raise InvalidRequest("cursor is not one this service issued", code="invalid_cursor")
        stmt = stmt.where(models.Checkpoint.step > after)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[Checkpoint](
        items=[_to_checkpoint(r, job, base_url) for r in rows],
        next_cursor=encode_cursor(rows[-1].step) if more and rows else None,
    )


def checkpoint_row(
    session: Session, checkpoint_id: str, *, job_id: str | None = None
) -> models.Checkpoint:
    """An unpruned checkpoint (of that job, when given); 404 otherwise."""
    row = session.get(models.Checkpoint, checkpoint_id)
    if row is None or (job_id is not None and row.job_id != job_id):
        where = f" of job {job_id!r}" if job_id else ""
        raise NotFound(f"no checkpoint {checkpoint_id!r}{where}")
    if row.pruned:
        raise NotFound(f"checkpoint {checkpoint_id} (step {row.step}) was pruned")
    return row


def get_checkpoint(
    session: Session, job_id: str, checkpoint_id: str, *, base_url: str | None = None
) -> Checkpoint:
    job = _job(session, job_id)
    return _to_checkpoint(checkpoint_row(session, checkpoint_id, job_id=job_id), job, base_url)


def checkpoint_file(session: Session, job_id: str, checkpoint_id: str, name: str) -> FileRef:
    _job(session, job_id)
    row = checkpoint_row(session, checkpoint_id, job_id=job_id)
    for f in row.files:
        if f["name"] == name:
            return FileRef(**f)
    raise NotFound(
        f"checkpoint {checkpoint_id} has no file {name!r}; it has {[f['name'] for f in row.files]}"
    )


def prune_checkpoints(session: Session, job_id: str, keep: int) -> list[str]:
    """Mark all but the newest `keep` checkpoints pruned; returns blobs that may be garbage.

    A checkpoint a queued or running job continues from is kept whatever its age.
    """
    rows = list(
        session.scalars(
            select(models.Checkpoint)
            .where(models.Checkpoint.job_id == job_id, models.Checkpoint.pruned.is_(False))
            .order_by(models.Checkpoint.step.desc())
        )
    )
    doomed = rows[max(keep, 0) :]
    if not doomed:
        return []
    held = set(
        session.scalars(
            select(models.Job.source_checkpoint_id)
            .where(
                models.Job.state.in_(HOLDING_STATES),
                models.Job.source_checkpoint_id.in_([r.id for r in doomed]),
            )
            .execution_options(unscoped=True)
        )
    )
    candidates: set[str] = set()
    for row in doomed:
        if row.id in held:
            continue
        row.pruned = True
        candidates |= {f["sha256"] for f in row.files}
    session.flush()
    return sorted(candidates - referenced_blobs(session, candidates))
