"""`loraplane eval` and `loraplane sample`: evaluation and sample jobs, run by a worker and
followed here under a progress bar until they end (--no-wait: only submit)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from loraplane_client import ok
from loraplane_client.api.evaluations import create_evaluation, get_evaluation
from loraplane_client.api.jobs import get_job
from loraplane_client.api.samples import create_sample, get_sample
from loraplane_client.models import Evaluation, EvaluationCreate, Job, Sample, SampleCreate
from loraplane_client.types import UNSET

from cli.common import (
    JsonOption,
    client,
    fmt_number,
    handles_errors,
    out,
    print_fields,
    print_json,
    unset,
)
from cli.follow import exit_for, follow_job

AdapterArg = Annotated[str | None, typer.Argument(
    help="The adapter: any lora_path form (id, name:version, name@alias, URL, ck_…, folder); "
         "leave out for the bare --base-model.", show_default=False)]
BaseOption = Annotated[str | None, typer.Option(
    "--base-model", help="The base model (default: the adapter's).", show_default=False)]
WaitOption = Annotated[bool, typer.Option(
    "--wait/--no-wait", help="Follow the job until it ends (the exit code tells how).")]
TimeoutOption = Annotated[float | None, typer.Option(
    help="With --wait: give up waiting after this many seconds (exit 124).")]


def _optional(value: Any) -> Any:
    return UNSET if value is None else value


def evaluate(
    ctx: typer.Context,
    adapter: AdapterArg = None,
    dataset: Annotated[str, typer.Option(help="ds_…, demo, or a worker-local JSONL.")] = "demo",
    base_model: BaseOption = None,
    max_samples: Annotated[int, typer.Option(help="The first rows measured.")] = 200,
    max_new_tokens: Annotated[int, typer.Option(help="Greedy tokens per row.")] = 64,
    chat: Annotated[bool, typer.Option(
        "--chat-template", help="Wrap prompt/answer rows in the chat template.")] = False,
    wait: WaitOption = True,
    timeout: TimeoutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Measure an adapter (or a bare base model) on a dataset: loss, perplexity, exact match."""
    body = EvaluationCreate(dataset=dataset, adapter=adapter, base_model=_optional(base_model),
                            max_samples=max_samples, max_new_tokens=max_new_tokens,
                            apply_chat_template=chat)
    created = _call(ctx, lambda: create_evaluation.sync_detailed(client=client(ctx), body=body))
    final = _wait(ctx, created.id, wait, as_json, timeout)
    evaluation: Evaluation = _call(ctx, lambda: get_evaluation.sync_detailed(
        created.id, client=client(ctx)))
    if as_json:
        print_json(evaluation)
    else:
        results = unset(evaluation.results)
        print_fields([
            ("evaluation", evaluation.id), ("state", str(evaluation.state)),
            ("adapter", unset(evaluation.adapter) or f"(bare {evaluation.base_model})"),
            ("dataset", evaluation.dataset),
            ("loss", fmt_number(results.loss) if results else ""),
            ("perplexity", fmt_number(results.perplexity) if results else ""),
            ("exact match", f"{results.exact_matches}/{results.rows} "
                            f"({results.exact_match:.1%})" if results else ""),
        ])
    if final is not None:
        raise typer.Exit(int(exit_for(final)))


def sample(
    ctx: typer.Context,
    adapter: AdapterArg = None,
    prompts: Annotated[list[str], typer.Option(
        "--prompt", "-p", help="A prompt to complete (repeatable).")] = [],  # noqa: B006
    base_model: BaseOption = None,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per completion.")] = 64,
    temperature: Annotated[float, typer.Option(help="0: greedy (deterministic).")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seeds sampling (temperature > 0).")] = 0,
    wait: WaitOption = True,
    timeout: TimeoutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Complete a few prompts with an adapter (or a bare base model)."""
    if not prompts:
        raise typer.BadParameter("give at least one --prompt", param_hint="--prompt")
    body = SampleCreate(prompts=prompts, adapter=adapter, base_model=_optional(base_model),
                        max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    created = _call(ctx, lambda: create_sample.sync_detailed(client=client(ctx), body=body))
    final = _wait(ctx, created.id, wait, as_json, timeout)
    done: Sample = _call(ctx, lambda: get_sample.sync_detailed(created.id, client=client(ctx)))
    if as_json:
        print_json(done)
    else:
        results = unset(done.results)
        if not results:
            print_fields([("sample", done.id), ("state", str(done.state))])
        for completion in results.completions if results else []:
            out.print(f"[bold]{completion.prompt}[/bold]", highlight=False, end="")
            out.print(completion.completion, highlight=False, markup=False)
    if final is not None:
        raise typer.Exit(int(exit_for(final)))


def _wait(ctx: typer.Context, job_id: str, wait: bool, quiet: bool,
          timeout: float | None) -> Job | None:
    if not wait:
        return None
    job: Job = _call(ctx, lambda: get_job.sync_detailed(job_id, client=client(ctx)))
    return follow_job(ctx, job, quiet=quiet, timeout=timeout)


@handles_errors
def _call(ctx: typer.Context, send: Any) -> Any:
    return ok(send())
