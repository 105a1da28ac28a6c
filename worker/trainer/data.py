"""Supervised fine-tuning data: JSONL of prompt/answer pairs or conversations, tokenised with
the loss on answer (assistant) tokens only."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from worker.trainer.chat import (
    conversation_problem,
    pair_messages,
    require_chat_template,
    tokenize_conversation,
)
from worker.trainer.errors import UserError

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Example:
    """One tokenised sample; `labels` is IGNORE_INDEX on prompt tokens."""

    input_ids: list[int]
    labels: list[int]

    @cached_property  # read for every example of every step
    def answer_tokens(self) -> int:
        """Tokens the loss is computed on (position 0 is never predicted)."""
        return sum(label != IGNORE_INDEX for label in self.labels[1:])


@dataclass(frozen=True)
class Row:
    """One JSONL line: a prompt/answer pair, or a conversation (`messages`)."""

    where: str  # `file line N`, for messages
    prompt: str = ""
    answer: str = ""
    messages: list[dict[str, str]] | None = None


def read_rows(
    files: Sequence[Path], prompt_key: str, answer_key: str, messages_key: str = "messages"
) -> list[Row]:
    """All rows of the JSONL files, in order; blank lines are skipped. A row holding
    `messages_key` is a conversation, any other a prompt/answer pair."""
    rows: list[Row] = []
    for path in files:
        path = Path(path)
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                where = f"{path.name} line {number}"
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise UserError(f"{where} is not valid UTF-8", code="invalid_dataset") from None
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserError(
                        f"{where} is not valid JSON: {exc.msg}", code="invalid_dataset"
                    ) from None
                if not isinstance(row, dict):
                    raise UserError(
                        f"{where} is a JSON {type(row).__name__}, not an object",
                        code="invalid_dataset",
                    )
                if messages_key in row:
                    problem = conversation_problem(row[messages_key])
                    if problem:
                        raise UserError(f"{where}: {messages_key!r} {problem}",
                                        code="invalid_dataset")
                    rows.append(Row(where, messages=row[messages_key]))
                    continue
                missing = [key for key in (prompt_key, answer_key) if key not in row]
                if missing:
                    raise UserError(
                        f"{where} lacks key{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(map(repr, missing))} (data.prompt_key={prompt_key!r}, "
                        f"data.answer_key={answer_key!r}; or a conversation under "
                        f"data.messages_key={messages_key!r}); keys present: {sorted(row)[:10]}",
                        code="dataset_missing_keys",
                    )
                prompt, answer = row[prompt_key], row[answer_key]
                if not isinstance(prompt, str) or not isinstance(answer, str):
                    raise UserError(
                        f"{where}: {prompt_key!r} and {answer_key!r} must be strings",
                        code="invalid_dataset",
                    )
                rows.append(Row(where, prompt=prompt, answer=answer))
    return rows


def tokenize_pairs(
    pairs: Sequence[tuple[str, str]], tokenizer: Any, *, max_length: int, append_eos: bool
) -> tuple[list[Example], int]:
    """Tokenise [bos] prompt + answer [eos], truncated to max_length; (examples, dropped count).

    Samples whose answer is cut away entirely by truncation carry no loss and are dropped.
    """
    if not pairs:
        return [], 0
    prompts = tokenizer([p for p, _ in pairs], add_special_tokens=False)["input_ids"]
    answers = tokenizer([a for _, a in pairs], add_special_tokens=False)["input_ids"]
    head = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    tail = [tokenizer.eos_token_id] if append_eos and tokenizer.eos_token_id is not None else []
    examples, dropped = [], 0
    for prompt_ids, answer_ids in zip(prompts, answers, strict=True):
        prompt_ids = head + list(prompt_ids)
        answer_ids = list(answer_ids) + tail
        input_ids = (prompt_ids + answer_ids)[:max_length]
        labels = ([IGNORE_INDEX] * len(prompt_ids) + answer_ids)[:max_length]
        example = Example(input_ids, labels)
        if example.answer_tokens == 0:
            dropped += 1
            continue
        examples.append(example)
    return examples, dropped


def epoch_order(count: int, *, seed: int, epoch: int, shuffle: bool) -> list[int]:
    """Sample order for an epoch: a pure function of (seed, epoch), whatever ran before."""
    if not shuffle:
        return list(range(count))
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63))
    return torch.randperm(count, generator=generator).tolist()


GROUP_STEPS = 50  # length grouping sorts the samples of this many steps at a time


def epoch_batches(
    lengths: Sequence[int],
    *,
    batch_size: int,
    seed: int,
    epoch: int,
    shuffle: bool,
    group_by_length: bool,
) -> list[list[int]]:
    """The sample indices of each optimizer step of an epoch: a pure function of the lengths,
    (seed, epoch) and the options, whatever ran before, so a resumed run sees the same batches.

    Grouped by length: the shuffled order is cut into groups of GROUP_STEPS batches, each group
    sorted longest first and cut into batches, and the full batches are shuffled again (the
    partial one, if any, stays last), so each step's samples have similar lengths."""
    order = epoch_order(len(lengths), seed=seed, epoch=epoch, shuffle=shuffle)
    if not group_by_length:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    group = batch_size * GROUP_STEPS
    batches: list[list[int]] = []
    for start in range(0, len(order), group):
        ranked = sorted(order[start : start + group], key=lambda i: (-lengths[i], i))
        batches += [ranked[i : i + batch_size] for i in range(0, len(ranked), batch_size)]
    full = [b for b in batches if len(b) == batch_size]
    partial = [b for b in batches if len(b) != batch_size]
    if shuffle:
        generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63) + 1)
        full = [full[i] for i in torch.randperm(len(full), generator=generator).tolist()]
    return full + partial


def padding_share(batches: Sequence[dict[str, torch.Tensor]]) -> float:
    """Share of padding among the tokens of collated micro-batches."""
    total = sum(b["attention_mask"].numel() for b in batches)
    real = sum(int(b["attention_mask"].sum()) for b in batches)
    return (total - real) / total if total else 0.0


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example; labels are IGNORE_INDEX on padding."""
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(example.labels, dtype=torch.long)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def _truncate(input_ids: list[int], labels: list[int], max_length: int) -> Example:
    return Example(input_ids[:max_length], labels[:max_length])


def tokenize_rows(
    rows: Sequence[Row],
    tokenizer: Any,
    *,
    max_length: int,
    append_eos: bool,
    apply_chat_template: bool = False,
) -> tuple[list[Example], int]:
    """Tokenise pairs (plain, or wrapped in the chat template) and conversations, in order;
    (examples, dropped count) as `tokenize_pairs`."""
    plain = [i for i, r in enumerate(rows) if r.messages is None and not apply_chat_template]
    plain_examples, _ = tokenize_pairs(
        [(rows[i].prompt, rows[i].answer) for i in plain],
        tokenizer, max_length=2**62, append_eos=append_eos,
    )
    by_index = dict(zip(plain, plain_examples, strict=True))
    examples, dropped = [], 0
    for index, row in enumerate(rows):
        if index in by_index:
            full = by_index[index]
            example = _truncate(full.input_ids, full.labels, max_length)
        else:
            messages = row.messages if row.messages is not None else pair_messages(
                row.prompt, row.answer
            )
            ids, trained = tokenize_conversation(tokenizer, messages)
            labels = [t if keep else IGNORE_INDEX for t, keep in zip(ids, trained, strict=True)]
            example = _truncate(ids, labels, max_length)
        if example.answer_tokens == 0:
            dropped += 1
            continue
        examples.append(example)
    return examples, dropped


def load_examples(
    files: Sequence[Path],
    tokenizer: Any,
    *,
    prompt_key: str,
    answer_key: str,
    max_length: int,
    append_eos: bool,
    max_samples: int = -1,
    what: str = "training",
    messages_key: str = "messages",
    apply_chat_template: bool = False,
    model_name: str = "the base model",
) -> tuple[list[Example], int]:
    """Read, validate, cap at max_samples and tokenise; a UserError if nothing is left."""
    rows = read_rows(files, prompt_key, answer_key, messages_key)
    if max_samples != -1:
        rows = rows[:max_samples]
    names = ", ".join(Path(f).name for f in files) or "(no files)"
    if not rows:
        raise UserError(f"the {what} dataset ({names}) has no samples", code="dataset_empty")
    if apply_chat_template:
        require_chat_template(tokenizer, model_name, "data.apply_chat_template is true")
    elif any(r.messages is not None for r in rows):
        where = next(r.where for r in rows if r.messages is not None)
        require_chat_template(tokenizer, model_name, f"{where} is a conversation")
    examples, dropped = tokenize_rows(
        rows, tokenizer, max_length=max_length, append_eos=append_eos,
        apply_chat_template=apply_chat_template,
    )
    if not examples:
        raise UserError(
            f"every sample of the {what} dataset ({names}) has its answer cut off by "
            f"data.max_length={max_length}; raise max_length or shorten the prompts",
            code="dataset_empty",
        )
    return examples, dropped
