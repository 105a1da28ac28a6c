"""Counts of what the service holds, for monitoring (Prometheus scrapes read them)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db import models
from service.schemas import JobState

ADAPTER_KINDS = ("lora", "full")


@dataclass(frozen=True)
class Counts:
    jobs_by_state: dict[str, int]
    adapters_by_kind: dict[str, int]


def count_jobs_and_adapters(session: Session) -> Counts:
    """Jobs per state and adapters per kind, every state and kind present (0 when none)."""
    jobs = dict(session.execute(
        select(models.Job.state, func.count()).group_by(models.Job.state)).all())
    adapters = dict(session.execute(
        select(models.Adapter.kind, func.count()).group_by(models.Adapter.kind)).all())
    return Counts(
        jobs_by_state={state.value: jobs.get(state.value, 0) for state in JobState},
        adapters_by_kind={kind: adapters.get(kind, 0) for kind in ADAPTER_KINDS},
    )
