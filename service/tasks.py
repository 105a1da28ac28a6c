"""Evaluations and samples: jobs of their own kinds, in the jobs table and queue.

Submit resolves `adapter` (any `lora_path` form) once, with the training submit's own rules
(service/lora_path.py), into the job's lora columns, and writes the model and data the job
reads as a spec of the training shape (base model, adapter, dataset and its keys), so the
claim's inputs, the dataset checks and the worker's data module treat it as they treat a
training job; what only these kinds need (tokens to generate, prompts, temperature, seed) is
kept as submitted in `task`, and the worker's result in `result`. Claiming, leases, fencing,
retries and every state change are the training job's (service/queue.py, `record_state`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from db import models
from service import datasets as dataset_service
from service import lora_path as lora_path_service
from service.errors import Conflict, InvalidRequest, InvalidSpec, NotFound
from service.jobs import cancel_if_requested, job_row, record_state, submit_job, to_job
from service.queue import fenced_row
from service.registry.job_output import model_spec
from service.schemas import (
    Evaluation,
    EvaluationCreate,
    Job,
    JobKind,
    JobState,
    Sample,
    SampleCreate,
    TaskResult,
    json_safe,
)
from service.settings import Settings
from service.spec import JobSpec, ParsedSpec


def _base_model_required(what: str) -> InvalidRequest:
    detail = f"base_model is required {what}"
    return InvalidRequest(detail, code="base_model_required",
                          errors=[{"loc": "base_model", "msg": detail, "type": "missing"}])


def _base_model(session: Session, adapter: str | None, base_model: str | None) -> str:
    """The base model: as given, else the adapter's or the checkpoint's."""
    if base_model is not None:
        return base_model
    if adapter is None:
        raise _base_model_required("when adapter is null (the bare base model is measured)")
    ref = lora_path_service.parse_lora_path(adapter)
    if ref.kind == "local":
        raise _base_model_required("with a worker-local adapter folder")
    if ref.kind == "checkpoint":
        _, job, _ = lora_path_service.find_checkpoint(session, ref, adapter)
        return str(model_spec(job).get("model_path"))
    return lora_path_service.find_adapter(session, ref, adapter).base_model


def _spec(adapter: str | None, base_model: str, priority: int,
          data: dict[str, Any] | None = None) -> JobSpec:
    model: dict[str, Any] = {"model_path": base_model, "is_lora": adapter is not None,
                             "lora_path": adapter}
    return JobSpec.model_validate({"priority": priority, "actor": {"model": model},
                                   **({"data": data} if data else {})})


def _queue(session: Session, settings: Settings, kind: JobKind, spec: JobSpec,
           task: dict[str, Any]) -> Job:
    lora = lora_path_service.resolve_for_submit(session, spec, settings)
    return submit_job(session, ParsedSpec(spec=spec, ignored_keys=[]),
                      max_attempts=settings.max_attempts, lora=lora, kind=kind, task=task)


def submit_evaluation(session: Session, settings: Settings, body: EvaluationCreate,
                      store: Any = None) -> Evaluation:
    """Queue an evaluation of an adapter (or a bare base model) on a dataset."""
    base = _base_model(session, body.adapter, body.base_model)
    spec = _spec(body.adapter, base, body.priority, {
        "train_data_paths": [body.dataset], "prompt_key": body.prompt_key,
        "answer_key": body.answer_key, "messages_key": body.messages_key,
        "apply_chat_template": body.apply_chat_template, "max_length": body.max_length,
        "max_samples": body.max_samples, "shuffle": False})
    try:
        dataset_service.check_data_paths(session, spec, settings.data_path_roots, store)
    except InvalidSpec as exc:  # say `dataset`, the field this body has

        def said(text: str) -> str:
            return text.replace("data.train_data_paths.0", "dataset")

        exc.message = said(exc.message)
        exc.args = (exc.message,)
        exc.errors = [{**e, "loc": "dataset", "msg": said(str(e.get("msg", "")))}
                      for e in exc.errors]
        raise
    job = _queue(session, settings, JobKind.evaluation, spec, body.model_dump(mode="json"))
    return to_evaluation(job_row(session, job.id))


def submit_sample(session: Session, settings: Settings, body: SampleCreate) -> Sample:
    """Queue a sample job: completions of the prompts."""
    base = _base_model(session, body.adapter, body.base_model)
    spec = _spec(body.adapter, base, body.priority)
    job = _queue(session, settings, JobKind.sample, spec, body.model_dump(mode="json"))
    return to_sample(job_row(session, job.id))


def _view(row: models.Job) -> dict[str, Any]:
    task = row.task or {}
    return {
        "id": row.id, "state": row.state, "adapter": task.get("adapter"),
        "adapter_id": row.parent_adapter_id if row.lora_source_kind == "adapter" else None,
        "checkpoint_id": row.source_checkpoint_id, "base_model": model_spec(row).get("model_path"),
        "attempt": row.attempt, "max_attempts": row.max_attempts, "error": row.error,
        "created_at": row.created_at, "started_at": row.started_at, "finished_at": row.finished_at,
    }


def to_evaluation(row: models.Job) -> Evaluation:
    task = row.task or {}
    return Evaluation(**_view(row), dataset=task["dataset"], max_samples=task["max_samples"],
                      max_new_tokens=task["max_new_tokens"],
                      results=(row.result or {}).get("evaluation"))


def to_sample(row: models.Job) -> Sample:
    task = row.task or {}
    return Sample(**_view(row), prompts=task["prompts"], max_new_tokens=task["max_new_tokens"],
                  temperature=task["temperature"], seed=task["seed"],
                  results=(row.result or {}).get("sample"))


def _row_of_kind(session: Session, job_id: str, kind: JobKind) -> models.Job:
    try:
        row = job_row(session, job_id)
    except NotFound:
        row = None
    if row is None or row.kind != kind.value:
        raise NotFound(f"no {kind.value} {job_id!r}")
    return row


def get_evaluation(session: Session, job_id: str) -> Evaluation:
    return to_evaluation(_row_of_kind(session, job_id, JobKind.evaluation))


def get_sample(session: Session, job_id: str) -> Sample:
    return to_sample(_row_of_kind(session, job_id, JobKind.sample))


def _storable(value: Any) -> Any:
    """`value` with NUL characters in its strings replaced by U+FFFD: generated text may hold
    them (a byte-level tokenizer emits any byte), and PostgreSQL's JSON refuses them."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {key: _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def finish_task(session: Session, job_id: str, lease_id: str, result: TaskResult) -> Job:
    """An evaluation's or a sample's result: stored, and the job succeeds, together. A job the
    user cancelled meanwhile ends `cancelled` and keeps no result."""
    row = fenced_row(session, job_id, lease_id)
    if cancel_if_requested(session, row, "cancelled by user"):
        session.flush()
        return to_job(row)
    if row.kind == JobKind.training.value:
        raise Conflict(f"job {job_id} is a training job: finish it with complete (an adapter)",
                       code="wrong_job_kind")
    part = result.evaluation if row.kind == JobKind.evaluation.value else result.sample
    if part is None:
        raise InvalidRequest(f"job {job_id} is a {row.kind} job: its result needs `{row.kind}`",
                             code="task_result_mismatch")
    row.result = _storable(json_safe({row.kind: part.model_dump(mode="json")}))
    if result.evaluation is not None:
        ev = result.evaluation
        row.metrics = json_safe({"loss": ev.loss, "perplexity": ev.perplexity,
                                 "exact_match": ev.exact_match, "rows": ev.rows})
    row.error = None
    record_state(session, row, JobState.succeeded)
    session.flush()
    return to_job(row)
