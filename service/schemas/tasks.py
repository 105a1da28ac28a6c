"""Jobs that are not training: evaluations and samples. What a client asks (`EvaluationCreate`,
`SampleCreate`), what it reads back (`Evaluation`, `Sample`), what the worker is told (`Task`,
in the claim) and what it reports (`TaskResult`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.jobs import JobError, JobState

MAX_EXAMPLES_KEPT = 1000  # per-example results stored for one evaluation
MAX_TEXT_CHARS = 4000  # of each stored prediction, reference or completion
MAX_NEW_TOKENS = 1024
MAX_PROMPTS = 64


_ADAPTER = Field(
    None, min_length=1, max_length=2000,
    description="Any `lora_path` form (adapter id, `name:version`, `name@alias`, adapter or "
    "checkpoint URL, checkpoint id, worker-local folder); null: the bare base model.")
_BASE = Field(
    None, min_length=1, max_length=2000,
    description="The base model (`model_path`); defaults to the adapter's. Required with a "
    "null `adapter` or a worker-local folder.")


class EvaluationCreate(BaseModel):
    """`POST /evaluations`: measure an adapter (or a bare base model) on a dataset."""

    model_config = ConfigDict(extra="forbid")

    adapter: str | None = _ADAPTER
    base_model: str | None = _BASE
    dataset: str = Field(min_length=1, max_length=2000, description=(
        "A dataset id (`ds_…`), `demo`, or a worker-local JSONL under the allowed roots: "
        "prompt/answer rows or conversations."))
    max_samples: int = Field(200, ge=1, le=100_000, description="The first rows measured.")
    max_new_tokens: int = Field(64, ge=1, le=MAX_NEW_TOKENS,
                                description="Greedy tokens generated per row for exact match.")
    prompt_key: str = Field("prompt", min_length=1, max_length=200)
    answer_key: str = Field("answer", min_length=1, max_length=200)
    messages_key: str = Field("messages", min_length=1, max_length=200)
    apply_chat_template: bool = Field(
        False, description="Wrap prompt/answer rows in the chat template, as in training.")
    max_length: int = Field(1024, ge=8, le=1 << 20,
                            description="Tokens per row for the loss; longer rows are cut.")
    priority: int = Field(0, ge=-100, le=100)


class SampleCreate(BaseModel):
    """`POST /samples`: completions of a few prompts."""

    model_config = ConfigDict(extra="forbid")

    adapter: str | None = _ADAPTER
    base_model: str | None = _BASE
    prompts: list[str] = Field(min_length=1, max_length=MAX_PROMPTS,
                               description="Plain prompts, each completed on its own.")
    max_new_tokens: int = Field(64, ge=1, le=MAX_NEW_TOKENS)
    temperature: float = Field(0.0, ge=0.0, le=10.0,
                               description="0: greedy (deterministic); above 0: sampled.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seeds sampling (temperature > 0).")
    priority: int = Field(0, ge=-100, le=100)


class Task(BaseModel):
    """What the worker of an evaluation or a sample job needs beyond the job's spec (which
    names the base model, the adapter and, for an evaluation, the dataset and its keys)."""

    max_new_tokens: int
    prompts: list[str] | None = None
    temperature: float = 0.0
    seed: int = 0


class ExampleResult(BaseModel):
    index: int = Field(description="Row of the dataset, from 0.")
    loss: float | None = Field(description="Mean loss over the row's answer tokens.")
    tokens: int = Field(description="Answer tokens the loss is over (0: cut by max_length).")
    prediction: str = Field(max_length=MAX_TEXT_CHARS, description="The greedy answer.")
    reference: str = Field(max_length=MAX_TEXT_CHARS)
    exact_match: bool = Field(description="Prediction equals reference, outer whitespace aside.")


class EvaluationResults(BaseModel):
    loss: float | None = Field(description="Token-weighted mean loss over every answer token.")
    perplexity: float | None = Field(description="exp(loss).")
    exact_match: float = Field(description="Share of rows whose greedy answer is exact.")
    exact_matches: int
    rows: int = Field(description="Rows measured.")
    tokens: int = Field(description="Answer tokens measured.")
    examples: list[ExampleResult] = Field(
        max_length=MAX_EXAMPLES_KEPT,
        description=f"Per-row results, the first {MAX_EXAMPLES_KEPT} rows.")


class Completion(BaseModel):
    prompt: str = Field(max_length=MAX_TEXT_CHARS)
    completion: str = Field(max_length=MAX_TEXT_CHARS)
    tokens: int = Field(description="Tokens generated.")


class SampleResults(BaseModel):
    completions: list[Completion] = Field(max_length=MAX_PROMPTS)


class TaskResult(BaseModel):
    """A worker's result for an evaluation (`evaluation`) or a sample job (`sample`)."""

    evaluation: EvaluationResults | None = None
    sample: SampleResults | None = None


class _TaskView(BaseModel):
    id: str = Field(description="The job's id (`job_…`): its events are at /jobs/{id}/events.")
    state: JobState
    adapter: str | None = Field(description="As submitted.")
    adapter_id: str | None = Field(description="The registry adapter it resolved to, if any.")
    checkpoint_id: str | None
    base_model: str
    attempt: int
    max_attempts: int
    error: JobError | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class Evaluation(_TaskView):
    dataset: str
    max_samples: int
    max_new_tokens: int
    results: EvaluationResults | None = Field(description="Set once it succeeded.")


class Sample(_TaskView):
    prompts: list[str]
    max_new_tokens: int
    temperature: float
    seed: int
    results: SampleResults | None = Field(description="Set once it succeeded.")


class EvaluationSummary(BaseModel):
    """An evaluation as listed on its adapter."""

    id: str
    state: JobState
    dataset: str
    loss: float | None
    perplexity: float | None
    exact_match: float | None
    created_at: datetime
