"""The evaluation module on the demo model: conversations and pairs under the chat template
are measured like training measures them, and answers are generated from exactly the turns
before the last assistant turn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from worker.trainer.chat import tokenize_conversation
from worker.trainer.data import read_rows, tokenize_rows
from worker.trainer.evaluate import _generation_input, run_evaluation
from worker.trainer.model import load_causal_lm, load_tokenizer

CHAT = [
    {"messages": [{"role": "system", "content": "be brief"},
                  {"role": "user", "content": "max 3 9"}, {"role": "assistant", "content": "9"},
                  {"role": "user", "content": "sort: cab"},
                  {"role": "assistant", "content": "abc"}]},
    {"messages": [{"role": "user", "content": "repeat 2: ox"},
                  {"role": "assistant", "content": "ox ox"}]},
]


def _lines(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.mark.parametrize("shape", ["conversations", "pairs-with-template"])
def test_chat_rows_are_measured_as_training_measures_them(
    shape: str, demo_model_dir: Path, make_spec, write_jsonl, hooks_cls
) -> None:
    if shape == "conversations":
        path, data = write_jsonl("chat.jsonl", _lines(CHAT)), {}
    else:
        path = write_jsonl("pairs.jsonl", _lines([{"prompt": "max 3 9", "answer": "9"},
                                                  {"prompt": "sort: cab", "answer": "abc"}]))
        data = {"apply_chat_template": True}
    spec = make_spec({"data": {"train_data_paths": [str(path)], **data}})
    hooks = hooks_cls()
    results, stopped = run_evaluation(spec, demo_model_dir, None, [path], max_new_tokens=4,
                                      device="cpu", hooks=hooks)
    assert stopped is None and results is not None
    assert [s[0] for s in hooks.steps] == [1, 2]

    tokenizer, model = load_tokenizer(demo_model_dir), load_causal_lm(demo_model_dir).eval()
    rows = read_rows([path], "prompt", "answer")
    examples, _ = tokenize_rows(rows, tokenizer, max_length=spec.data.max_length,
                                append_eos=True, apply_chat_template=bool(data))
    for row, example, measured in zip(rows, examples, results["examples"], strict=True):
        with torch.no_grad():  # HF's own loss: mean over the labelled (assistant) tokens
            expected = model(input_ids=torch.tensor([example.input_ids]),
                             labels=torch.tensor([example.labels])).loss.item()
        assert measured["loss"] == pytest.approx(expected, rel=1e-5)
        assert measured["tokens"] == example.answer_tokens
        messages = row.messages or [{"role": "user", "content": row.prompt},
                                    {"role": "assistant", "content": row.answer}]
        assert measured["reference"] == messages[-1]["content"]
        ids, _ = _generation_input(tokenizer, row, bool(data))
        full, trained = tokenize_conversation(tokenizer, messages)
        last_turn = max(i for i, t in enumerate(trained) if t and not trained[i - 1])
        assert ids == full[:last_turn]  # the prompt is the conversation up to the last answer
    assert results["exact_matches"] == sum(e["exact_match"] for e in results["examples"])


def test_a_stop_request_ends_the_evaluation_without_results(
    demo_model_dir: Path, make_spec, write_jsonl, hooks_cls
) -> None:
    path = write_jsonl("chat.jsonl", _lines(CHAT))
    hooks = hooks_cls(stop_at={1: "handback"})
    results, stopped = run_evaluation(make_spec(), demo_model_dir, None, [path],
                                      max_new_tokens=2, device="cpu", hooks=hooks)
    assert (results, stopped) == (None, "handback") and len(hooks.steps) == 1
