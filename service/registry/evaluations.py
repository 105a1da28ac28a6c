"""The evaluations listed on an adapter: evaluation jobs whose `adapter` resolved to it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db import models
from service.schemas import EvaluationSummary, JobKind

MAX_LISTED = 50  # newest first, per adapter


def evaluations_of(session: Session, adapter_ids: Sequence[str]) -> dict[str, list[EvaluationSummary]]:
    """Each adapter's evaluations, newest first, with their headline figures."""
    listed: dict[str, list[EvaluationSummary]] = {i: [] for i in adapter_ids}
    if not adapter_ids:
        return listed
    rows = session.scalars(
        select(models.Job)
        .where(models.Job.kind == JobKind.evaluation.value,
               models.Job.lora_source_kind == "adapter",
               models.Job.parent_adapter_id.in_(list(adapter_ids)))
        .order_by(models.Job.id.desc())
    )
    for row in rows:
        items = listed[row.parent_adapter_id or ""]
        if len(items) < MAX_LISTED:
            items.append(summarise(row))
    return listed


def summarise(row: Any) -> EvaluationSummary:
    """The summary of an evaluation job's row (an ORM row, or a row of its columns)."""
    results = (row.result or {}).get("evaluation") or {}
    return EvaluationSummary(
        id=row.id, state=row.state, dataset=(row.task or {}).get("dataset", ""),
        loss=results.get("loss"), perplexity=results.get("perplexity"),
        exact_match=results.get("exact_match"), created_at=row.created_at)
