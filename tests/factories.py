"""Shared factories for tests (and benchmarks): build what the code under test consumes."""

from __future__ import annotations

from typing import Any

from loraplane_client.models import JobSpec as WorkerJobSpec

from service.spec import JobSpec


def worker_spec(document: dict[str, Any]) -> WorkerJobSpec:
    """A spec as a worker receives it: validated and completed by the server, then parsed
    by the SDK (the trainer's input type)."""
    validated = JobSpec.model_validate(document)
    return WorkerJobSpec.from_dict(validated.model_dump(mode="json"))
