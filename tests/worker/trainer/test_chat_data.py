"""Chat data in the trainer: conversations and chat-templated pairs, the loss on assistant
tokens only, the same checks as the upload, and the demo tokenizer's template."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from tests.worker.trainer.chat_cases import BAD_CASES, GOOD
from worker.demo import DEMO_MODEL_NAME, demo_records, ensure_demo_model
from worker.trainer.data import IGNORE_INDEX, collate, load_examples
from worker.trainer.errors import UserError
from worker.trainer.model import load_tokenizer

ARGS = {"prompt_key": "prompt", "answer_key": "answer", "max_length": 256, "append_eos": True}


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _split(tokenizer, ids: torch.Tensor, labels: torch.Tensor) -> tuple[str, str]:
    """(text of the labelled tokens, text of the whole row without padding)."""
    trained = [int(t) for t, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX]
    return tokenizer.decode(trained), tokenizer.decode([int(t) for t in ids if t != 258])


def test_labels_are_on_every_assistant_turn_and_nowhere_else(demo_model_dir, tmp_path) -> None:
    tokenizer = load_tokenizer(demo_model_dir)
    data = _jsonl(tmp_path / "chat.jsonl", [GOOD, {"prompt": "add 2 2\n", "answer": "4"}])
    examples, dropped = load_examples([data], tokenizer, **ARGS)
    assert dropped == 0
    batch = collate(examples, pad_id=tokenizer.pad_token_id)
    trained, whole = _split(tokenizer, batch["input_ids"][0], batch["labels"][0])
    assert whole == (
        "<s>system: be brief\nuser: hi\nassistant: hello</s>\nuser: add 1 2\nassistant: 3</s>\n"
    )
    assert trained == "hello</s>\n3</s>\n"  # two assistant turns, end-of-turn markers included
    # a plain pair in the same file keeps the plain format
    trained, whole = _split(tokenizer, batch["input_ids"][1], batch["labels"][1])
    assert (whole, trained) == ("<s>add 2 2\n4</s>", "4</s>")


def test_apply_chat_template_wraps_pairs_as_user_and_assistant(demo_model_dir, tmp_path) -> None:
    tokenizer = load_tokenizer(demo_model_dir)
    data = _jsonl(tmp_path / "pairs.jsonl", [{"prompt": "add 2 2", "answer": "4"}])
    (example,), _ = load_examples([data], tokenizer, **ARGS, apply_chat_template=True)
    batch = collate([example], pad_id=tokenizer.pad_token_id)
    trained, whole = _split(tokenizer, batch["input_ids"][0], batch["labels"][0])
    assert (whole, trained) == ("<s>user: add 2 2\nassistant: 4</s>\n", "4</s>\n")


def _conversations(count: int) -> list[dict]:
    records = demo_records(2 * count, seed=3)
    return [
        {"messages": [
            {"role": "system", "content": "answer briefly"},
            {"role": "user", "content": first["prompt"].strip()},
            {"role": "assistant", "content": first["answer"]},
            {"role": "user", "content": second["prompt"].strip()},
            {"role": "assistant", "content": second["answer"]},
        ]}
        for first, second in zip(records[::2], records[1::2], strict=True)
    ]


def test_a_chat_job_learns_and_its_adapter_loads_with_peft(
    train, make_spec, demo_model_dir, tmp_path
) -> None:
    data = _jsonl(tmp_path / "chat.jsonl", _conversations(48))
    spec = make_spec({"actor": {"optim": {"lr": 1e-2}}, "data": {"max_length": 128},
                      "runner": {"max_steps": 12}})
    result, hooks, session = train(spec, train_files=[data])
    assert hooks.losses[-1] < hooks.losses[0] - 1.0
    base = AutoModelForCausalLM.from_pretrained(demo_model_dir, dtype=torch.float32)
    loaded = PeftModel.from_pretrained(base, str(result.output_dir))
    ids = session._micro_batches(session.train_examples[:1])[0]["input_ids"]
    session.model.eval()
    with torch.no_grad():
        expected = session.model(input_ids=ids).logits
        torch.testing.assert_close(loaded(input_ids=ids).logits, expected)


@pytest.mark.parametrize(("messages", "problem"), BAD_CASES)
def test_bad_conversations_fail_with_the_uploads_reason(
    demo_model_dir, tmp_path, messages, problem
) -> None:
    data = _jsonl(tmp_path / "bad.jsonl", [GOOD, GOOD, {"messages": messages}])
    with pytest.raises(UserError) as caught:
        load_examples([data], load_tokenizer(demo_model_dir), **ARGS)
    assert caught.value.code == "invalid_dataset"
    assert caught.value.message == f"bad.jsonl line 3: 'messages' {problem}"


def _without_template(demo_model_dir: Path, target: Path) -> Path:
    shutil.copytree(demo_model_dir, target)
    (target / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((target / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (target / "tokenizer_config.json").write_text(json.dumps(config))
    return target


@pytest.mark.parametrize("asked", ["apply_chat_template", "messages"])
def test_a_base_without_a_chat_template_is_a_user_error_naming_the_fix(
    train, make_spec, demo_model_dir, tmp_path, asked
) -> None:
    base = _without_template(demo_model_dir, tmp_path / "plain-model")
    rows = [GOOD] if asked == "messages" else [{"prompt": "q", "answer": "a"}]
    data = _jsonl(tmp_path / "d.jsonl", rows)
    spec = make_spec({"data": {"apply_chat_template": asked == "apply_chat_template"}})
    with pytest.raises(UserError) as caught:
        train(spec, train_files=[data], base_model_dir=base)
    assert caught.value.code == "no_chat_template"
    why = (
        "d.jsonl line 1 is a conversation" if asked == "messages"
        else "data.apply_chat_template is true"
    )
    assert caught.value.message.startswith(
        f"{why}, but the tokenizer of demo-tiny-llama has no chat template; use a base model "
        "whose tokenizer has one"
    )
    assert "data.apply_chat_template: false" in caught.value.message


def test_an_older_demo_model_gets_the_chat_template_and_keeps_its_weights(
    demo_model_dir, tmp_path
) -> None:
    old = _without_template(demo_model_dir, tmp_path / DEMO_MODEL_NAME)
    weights = (old / "model.safetensors").read_bytes()
    assert load_tokenizer(old).chat_template is None
    assert ensure_demo_model(tmp_path) == old
    assert load_tokenizer(old).chat_template == load_tokenizer(demo_model_dir).chat_template
    assert (old / "model.safetensors").read_bytes() == weights
    assert sorted(p.name for p in tmp_path.iterdir()) == [DEMO_MODEL_NAME]  # no staging left
