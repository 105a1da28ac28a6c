"""Registered adapters: rows, reads (with files, aliases, lineage), and deletion."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import bindparam, case, delete, literal_column, null, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db import models
from db.scoping import PROJECT_KEY
from service.errors import Conflict, InvalidRequest, NotFound
from service.paging import decode_cursor, encode_cursor, newest_first
from service.registry import ordering
from service.registry.evaluations import MAX_LISTED, evaluations_of, summarise
from service.registry.job_output import HOLDING_STATES
from service.registry.urls import adapter_archive_url, adapter_lora_path
from service.schemas import Adapter, FileRef, JobKind, LineageEntry, Page, from_row

log = logging.getLogger(__name__)

MAX_LINEAGE = 1000



def upsert(session: Session, model: type) -> Any:
    """An INSERT that takes `.on_conflict_do_update(...)` on this session's engine."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"no upsert for {dialect}")


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
        for row in rows:
            result[row.adapter_id].append(FileRef.model_validate(row))
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


def to_adapters(
    session: Session, rows: Sequence[models.Adapter], base_url: str | None
) -> list[Adapter]:
    """The public views of adapter rows, with their files, aliases and lineage."""
    ids = [r.id for r in rows]
    files, aliases, lineages, evaluations = (
        _files_of(session, ids),
        _aliases_of(session, ids),
        _lineages(session, rows),
        evaluations_of(session, ids),
    )
    return [
        from_row(
            Adapter,
            r,
            files=files[r.id],
            lineage=lineages[r.id],
            aliases=aliases[r.id],
            evaluations=evaluations[r.id],
            lora_path=adapter_lora_path(r.id, base_url),
            download_url=adapter_archive_url(r.id, base_url),
        )
        for r in rows
    ]


# `GET /adapters/{id}` is the registry's hot path: two Core statements, built once, run on
# the session's connection (no ORM objects, and the project filter written out instead of the
# session-level one of db/scoping.py, whose per-statement option defeats the statement cache).
_ADAPTERS, _FILES = models.Adapter.__table__, models.AdapterFile.__table__
_ALIASES, _JOBS = models.Alias.__table__, models.Job.__table__


def _one_adapter_statements(scoped: bool) -> tuple[Any, Any]:
    """(the adapter's row joined with its files; its evaluations and aliases, in one union)."""
    adapter_id, project = bindparam("adapter_id"), bindparam("project")
    row = (
        select(_ADAPTERS, _FILES.c.name.label("file_name"), _FILES.c.sha256.label("file_sha256"),
               _FILES.c.size.label("file_size"))
        .select_from(_ADAPTERS.outerjoin(_FILES, _FILES.c.adapter_id == _ADAPTERS.c.id))
        .where(_ADAPTERS.c.id == adapter_id)
        .order_by(_FILES.c.name)
    )
    # The jobs' part first: a union's columns take their types (JSON, UTC datetimes) from it.
    evaluations = select(
        literal_column("'evaluation'").label("part"), _JOBS.c.id, _JOBS.c.state, _JOBS.c.task,
        _JOBS.c.result, _JOBS.c.created_at,
    ).where(_JOBS.c.kind == JobKind.evaluation.value, _JOBS.c.lora_source_kind == "adapter",
            _JOBS.c.parent_adapter_id == adapter_id)
    aliases = select(literal_column("'alias'"), _ALIASES.c.alias, null(), null(), null(),
                     null()).where(_ALIASES.c.adapter_id == adapter_id)
    if scoped:
        row = row.where(_ADAPTERS.c.project == project)
        evaluations = evaluations.where(_JOBS.c.project == project)
        aliases = aliases.where(_ALIASES.c.project == project)
    return row, union_all(evaluations, aliases)


_ONE_ADAPTER = {scoped: _one_adapter_statements(scoped) for scoped in (False, True)}


def get_adapter(session: Session, adapter_id: str, *, base_url: str | None = None) -> Adapter:
    """One adapter with its files, aliases, evaluations and lineage; 404 if absent (or in
    another project than the session's). Two statements, and one per lineage level."""
    project = session.info.get(PROJECT_KEY)
    row_stmt, related_stmt = _ONE_ADAPTER[project is not None]
    params = {"adapter_id": adapter_id, "project": project}
    session.flush()  # the statements below run on the connection, past the ORM's autoflush
    connection = session.connection()
    rows = connection.execute(row_stmt, params).all()
    if not rows:
        raise NotFound(f"no adapter {adapter_id!r}")
    aliases: list[str] = []
    evaluations = []
    for part in connection.execute(related_stmt, params):
        if part.part == "alias":
            aliases.append(part.id)
        else:
            evaluations.append(part)
    evaluations.sort(key=lambda e: e.id, reverse=True)  # newest first: ids are time-ordered
    row = rows[0]
    return from_row(
        Adapter,
        row,
        files=[FileRef(name=r.file_name, sha256=r.file_sha256, size=r.file_size)
               for r in rows if r.file_name is not None],
        lineage=_lineages(session, [row])[row.id] if row.parent_adapter_id else [],
        aliases=sorted(aliases),
        evaluations=[summarise(e) for e in evaluations[:MAX_LISTED]],
        lora_path=adapter_lora_path(row.id, base_url),
        download_url=adapter_archive_url(row.id, base_url),
    )


def list_adapters(
    session: Session,
    *,
    name: str | None = None,
    base_model: str | None = None,
    kind: str | None = None,
    tags: Sequence[str] = (),
    servable: Literal["vllm", "peft"] | None = None,
    order_by: str = "created_at",
    limit: int = 50,
    cursor: str | None = None,
    base_url: str | None = None,
) -> Page[Adapter]:
    """Newest first, keyed on the time-ordered id; or by a final metric (nulls last, ties
    newest first). `tags` (`k:v` or `k`) combine with AND; `servable`: only adapters whose
    serving verdict for that engine is ok."""
    stmt = select(models.Adapter)
    if name is not None:
        stmt = stmt.where(models.Adapter.name == name)
    if base_model is not None:
        stmt = stmt.where(models.Adapter.base_model == base_model)
    if kind is not None:
        stmt = stmt.where(models.Adapter.kind == kind)
    stmt = stmt.where(*ordering.tag_filters(list(tags)))
    if servable == "vllm":
        stmt = stmt.where(models.Adapter.vllm_servable.is_(True))
    elif servable == "peft":
        stmt = stmt.where(models.Adapter.peft_servable.is_(True))
    metric, ascending = ordering.parse_order(order_by)
    if metric is None:
        rows, next_cursor = newest_first(
            session, stmt, models.Adapter.id, limit=limit, cursor=cursor
        )
    else:
        rows, next_cursor = _by_metric(session, stmt, metric, ascending, limit, cursor)
    return Page[Adapter](items=to_adapters(session, rows, base_url), next_cursor=next_cursor)


def _by_metric(
    session: Session, stmt: Any, metric: str, ascending: bool, limit: int, cursor: str | None
) -> tuple[list[models.Adapter], str | None]:
    value = ordering.metric_value(session, metric)
    if cursor:
        after = decode_cursor(cursor)
        if not (
            isinstance(after, list) and len(after) == 2 and isinstance(after[1], str)
            and (after[0] is None or isinstance(after[0], int | float))
        ):
            raise InvalidRequest("cursor is not one this service issued", code="invalid_cursor")
        stmt = stmt.where(ordering.after_metric_cursor(value, ascending, after[0], after[1]))
    stmt = stmt.add_columns(value.label("metric_value")).order_by(
        case((value.is_(None), 1), else_=0),
        value.asc() if ascending else value.desc(),
        models.Adapter.id.desc(),
    ).limit(limit + 1)
    found = session.execute(stmt).all()
    rows = [r[0] for r in found[:limit]]
    if len(found) > limit:
        last_row, last_value = found[limit - 1]
        return rows, encode_cursor([last_value, last_row.id])
    return rows, None


def adapter_file(session: Session, adapter_id: str, name: str) -> FileRef:
    """One file of an adapter; 404 naming the files it has."""
    adapter_row(session, adapter_id)
    row = session.get(models.AdapterFile, (adapter_id, name))
    if row is None:
        names = [f.name for f in _files_of(session, [adapter_id])[adapter_id]]
        raise NotFound(f"adapter {adapter_id} has no file {name!r}; it has {names}")
    return FileRef.model_validate(row)


def adapter_files(session: Session, adapter_id: str) -> list[FileRef]:
    """The files of an adapter the caller has already read, by name (none for an unknown id)."""
    return _files_of(session, [adapter_id])[adapter_id]


def latest_version(session: Session, name: str) -> models.Adapter | None:
    """The newest version of a name, if any."""
    return session.scalar(
        select(models.Adapter)
        .where(models.Adapter.name == name)
        .order_by(models.Adapter.version.desc())
        .limit(1)
    )


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
        select(models.Job.id, models.Job.state, models.Job.kind)
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
            held = ", ".join(f"{j} ({s})" if k == "training" else f"{j} ({k}, {s})"
                             for j, s, k in jobs)
            verb = "jobs {} use" if len(jobs) > 1 else "job {} uses"
            reasons.append(f"{verb.format(held)} it")
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
