"""What a claimed job's worker downloads: its resume checkpoint, the adapter it continues
from, its uploaded datasets. Built from the job's columns (what submit resolved), never by
parsing the spec's lora_path again; every file is one lease-fenced worker URL."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from db import models
from service.errors import InvalidLoraPath, NotFound
from service.lora_path import LoraRef, find_adapter, find_checkpoint, job_rank
from service.registry.adapters import adapter_files
from service.registry.checkpoints import latest_checkpoint
from service.registry.job_output import model_spec
from service.schemas import (
    Checkpoint,
    JobInputs,
    JobKind,
    LoraSource,
    ResumePoint,
    SourceFile,
    Task,
)


def task_of(job: models.Job) -> Task | None:
    """What the worker of an evaluation or a sample job is told beyond the spec."""
    if job.kind == JobKind.training.value or job.task is None:
        return None
    return Task(max_new_tokens=job.task["max_new_tokens"], prompts=job.task.get("prompts"),
                temperature=job.task.get("temperature", 0.0), seed=job.task.get("seed", 0))


def input_url(job_id: str, sha256: str) -> str:
    """The worker path an input blob of the job is downloaded from."""
    return f"/worker/jobs/{job_id}/inputs/{sha256}"


def source_file(job_id: str, name: str, sha256: str, size: int) -> SourceFile:
    """A stored blob as an input of the job, saved under `name` by the worker."""
    return SourceFile(name=name, sha256=sha256, size=size, url=input_url(job_id, sha256))


def lora_source(session: Session, job: models.Job) -> LoraSource | None:
    """What the job continues from, from what submit resolved its lora_path to."""
    kind = job.lora_source_kind
    if kind is None:
        return None
    lora_path = str(model_spec(job).get("lora_path") or "")
    named = job.source_checkpoint_id if kind == "checkpoint" else job.parent_adapter_id
    if kind != "local" and named is None:  # a row filled by migration 0002 from a stale spec
        raise InvalidLoraPath(f"lora_path {lora_path!r}: the {kind} it named at submit is gone")
    if kind == "local":
        return LoraSource(kind="local", lora_path=lora_path, path=job.lora_local_path)
    if kind == "checkpoint":
        ref = LoraRef(kind="checkpoint", checkpoint_id=job.source_checkpoint_id)
        row, source_job, pair = find_checkpoint(session, ref, lora_path)
        return LoraSource(
            kind="checkpoint",
            lora_path=lora_path,
            checkpoint_id=row.id,
            job_id=source_job.id,
            rank=job_rank(session, source_job),
            files=[source_file(job.id, base, f.sha256, f.size) for base, f in sorted(pair.items())],
        )
    # A registry reference was pinned at submit: an alias moved since changes nothing.
    adapter = find_adapter(
        session, LoraRef(kind="adapter", adapter_id=job.parent_adapter_id), lora_path
    )
    return LoraSource(
        kind="adapter",
        lora_path=lora_path,
        adapter_id=adapter.id,
        rank=adapter.rank,
        files=[source_file(job.id, f.name, f.sha256, f.size)
               for f in adapter_files(session, adapter.id)],
    )


def job_inputs(session: Session, job: models.Job | Row) -> JobInputs:
    """The resume checkpoint, the adapter to continue from, and the uploaded datasets."""
    return claim_inputs(session, job, latest_checkpoint(session, job.id, job=job))


def claim_inputs(session: Session, job: models.Job | Row, latest: Checkpoint | None) -> JobInputs:
    """`job_inputs` with the resume checkpoint `latest` already read (by the claim)."""
    checkpoint = None
    if latest is not None:
        checkpoint = ResumePoint(
            checkpoint_id=latest.id,
            step=latest.step,
            files=[source_file(job.id, f.name, f.sha256, f.size) for f in latest.files],
        )
    data = job.spec["data"]
    datasets = {}
    named = [] if job.kind == JobKind.sample.value else [
        *data["train_data_paths"], *(data.get("val_data_paths") or [])]
    for reference in named:
        if reference.startswith("ds_"):
            row = session.scalar(select(models.Dataset).where(
                models.Dataset.id == reference, models.Dataset.project == job.project))
            if row is None:
                raise NotFound(f"dataset {reference} is gone", code="dataset_not_found")
            datasets[reference] = source_file(job.id, f"{reference}.jsonl", row.sha256, row.size)
    return JobInputs(checkpoint=checkpoint, lora_source=lora_source(session, job),
                     datasets=datasets, kind=JobKind(job.kind), task=task_of(job))


def input_size(session: Session, job: models.Job, sha256: str) -> int:
    """The size of the job's input blob with this sha256; 404 for any other blob."""
    for f in job_inputs(session, job).files():
        if f.sha256 == sha256:
            return f.size
    raise NotFound(f"{sha256} is not an input of job {job.id}")
