"""Prompt/answer data: tokenisation, loss masks, order, and the errors users see."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from worker.trainer.data import IGNORE_INDEX, collate, epoch_order, load_examples, tokenize_pairs
from worker.trainer.errors import UserError


@pytest.fixture(scope="module")
def tokenizer(demo_model_dir: Path):
    return AutoTokenizer.from_pretrained(demo_model_dir, local_files_only=True)


def test_loss_only_on_answer_tokens_with_bos_and_eos(tokenizer) -> None:
    (example,), dropped = tokenize_pairs([("ab", "XY")], tokenizer, max_length=64, append_eos=True)
    assert dropped == 0
    assert example.input_ids == [256, ord("a"), ord("b"), ord("X"), ord("Y"), 257]
    assert example.labels == [IGNORE_INDEX] * 3 + [ord("X"), ord("Y"), 257]
    (no_eos,), _ = tokenize_pairs([("ab", "XY")], tokenizer, max_length=64, append_eos=False)
    assert no_eos.input_ids[-1] == ord("Y")


def test_truncation_and_samples_without_answer_left(tokenizer) -> None:
    pairs = [("abcdef", "XYZ"), ("abcdefghij", "XYZ")]
    examples, dropped = tokenize_pairs(pairs, tokenizer, max_length=9, append_eos=True)
    assert dropped == 1  # bos + 10 prompt bytes leave no room for the answer
    assert len(examples[0].input_ids) == 9 and examples[0].labels[-2:] == [ord("X"), ord("Y")]


def test_collate_pads_right_and_masks_padding(tokenizer) -> None:
    examples, _ = tokenize_pairs(
        [("a", "b"), ("abc", "def")], tokenizer, max_length=64, append_eos=True
    )
    batch = collate(examples, pad_id=258)
    assert batch["input_ids"].shape == (2, 8)
    assert batch["input_ids"][0, 4:].tolist() == [258] * 4
    assert batch["attention_mask"][0].tolist() == [1] * 4 + [0] * 4
    assert batch["labels"][0, 4:].tolist() == [IGNORE_INDEX] * 4


def test_epoch_order_is_a_function_of_seed_and_epoch() -> None:
    first = epoch_order(50, seed=3, epoch=2, shuffle=True)
    assert sorted(first) == list(range(50))
    assert epoch_order(50, seed=3, epoch=2, shuffle=True) == first
    assert epoch_order(50, seed=3, epoch=1, shuffle=True) != first
    assert epoch_order(50, seed=4, epoch=2, shuffle=True) != first
    assert epoch_order(5, seed=3, epoch=2, shuffle=False) == [0, 1, 2, 3, 4]


def _load(tokenizer, files, **kw):
    args = {"prompt_key": "prompt", "answer_key": "answer", "max_length": 64, "append_eos": True}
    return load_examples(files, tokenizer, **{**args, **kw})


def test_custom_keys_blank_lines_and_max_samples(tokenizer, write_jsonl) -> None:
    path = write_jsonl(
        "qa.jsonl", '{"q": "1", "a": "x"}\n\n{"q": "2", "a": "y"}\n{"q": "3", "a": "z"}\n'
    )
    examples, _ = _load(tokenizer, [path], prompt_key="q", answer_key="a", max_samples=2)
    assert [e.input_ids[1] for e in examples] == [ord("1"), ord("2")]


def test_missing_key_names_line_and_keys(tokenizer, write_jsonl) -> None:
    path = write_jsonl(
        "bad.jsonl", '{"prompt": "a", "answer": "b"}\n' * 2 + '{"prompt": "a", "reply": "b"}\n'
    )
    with pytest.raises(UserError) as info:
        _load(tokenizer, [path])
    assert info.value.code == "dataset_missing_keys"
    assert "line 3" in info.value.message and "'answer'" in info.value.message
    assert "reply" in info.value.message


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_dataset(tokenizer, write_jsonl, text: str) -> None:
    with pytest.raises(UserError) as info:
        _load(tokenizer, [write_jsonl("empty.jsonl", text)])
    assert info.value.code == "dataset_empty"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"prompt": "a", "answer": "b"}\n{"prompt": "a", "answer": \n', "line 2"),
        ('["prompt", "answer"]\n', "not an object"),
        ('{"prompt": "a", "answer": 5}\n', "must be strings"),
    ],
)
def test_malformed_lines(tokenizer, write_jsonl, text: str, fragment: str) -> None:
    with pytest.raises(UserError) as info:
        _load(tokenizer, [write_jsonl("bad.jsonl", text)])
    assert info.value.code == "invalid_dataset"
    assert fragment in info.value.message


def test_missing_keys_fail_the_job_before_the_model_loads(train, make_spec, write_jsonl) -> None:
    path = write_jsonl("bad.jsonl", '{"question": "a", "answer": "b"}\n')
    with pytest.raises(UserError) as info:
        train(make_spec(), train_files=[path])
    assert info.value.code == "dataset_missing_keys"
