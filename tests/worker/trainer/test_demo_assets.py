"""The bundled demo model and dataset."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer

from worker.demo import (
    DEMO_MODEL_NAME,
    demo_dataset_path,
    ensure_demo_model,
    render_demo_dataset,
)
from worker.trainer import resolve_model_dir


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_demo_model_is_generated_once_and_identically(tmp_path: Path, demo_model_dir: Path) -> None:
    fresh = ensure_demo_model(tmp_path)
    assert fresh == tmp_path / DEMO_MODEL_NAME
    assert _digests(fresh) == _digests(demo_model_dir)  # same seed, same bytes
    mtime = (fresh / "model.safetensors").stat().st_mtime_ns
    assert ensure_demo_model(tmp_path) == fresh
    assert (fresh / "model.safetensors").stat().st_mtime_ns == mtime  # not rebuilt
    assert sorted(p.name for p in tmp_path.iterdir()) == [DEMO_MODEL_NAME]  # no staging left
    assert resolve_model_dir(DEMO_MODEL_NAME, tmp_path) == fresh


def test_demo_model_config(demo_model_dir: Path) -> None:
    config = AutoConfig.from_pretrained(demo_model_dir, local_files_only=True)
    assert config.model_type == "llama"
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (64, 2, 4)
    assert config.intermediate_size == 128
    assert config.tie_word_embeddings is False
    assert not list(demo_model_dir.glob("*.bin"))


def test_byte_tokenizer_round_trips_any_text(demo_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir, local_files_only=True)
    text = "reverse: héllo ☃\n  tabs\tand 12+34"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids == list(text.encode("utf-8"))
    assert tokenizer.decode(ids) == text
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (
        256,
        257,
        258,
    )
    assert len(tokenizer) == 259


def test_demo_dataset_is_the_generated_one() -> None:
    path = demo_dataset_path()
    text = path.read_text(encoding="utf-8")
    assert text == render_demo_dataset()  # regenerate with `python -m worker.demo`
    assert len(text.encode("utf-8")) < 30_000
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) >= 150
    assert all(set(row) == {"prompt", "answer"} for row in rows)
    assert {"prompt": "reverse: cat\n", "answer": "tac"} in rows
