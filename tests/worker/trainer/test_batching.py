"""Length-grouped batches: every sample once an epoch, deterministic for a seed, far less
padding than shuffled batches, reported per step, and resumable bit-exact."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from worker.trainer.data import epoch_batches

ARGS = {"batch_size": 8, "seed": 3, "shuffle": True}


def _lengths(count: int = 830, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.choice([rng.randint(8, 40), rng.randint(40, 400)]) for _ in range(count)]


def _padding(lengths: list[int], batches: list[list[int]], micro: int = 4) -> float:
    padded = real = 0
    for batch in batches:
        ranked = sorted(batch, key=lambda i: -lengths[i])
        for start in range(0, len(ranked), micro):
            rows = [lengths[i] for i in ranked[start : start + micro]]
            padded += max(rows) * len(rows)
            real += sum(rows)
    return 1 - real / padded


def test_grouped_batches_cover_every_sample_once_and_are_a_function_of_seed_and_epoch() -> None:
    lengths = _lengths()
    batches = epoch_batches(lengths, epoch=1, group_by_length=True, **ARGS)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [len(b) for b in batches] == [8] * 103 + [6]  # the partial batch stays last
    assert epoch_batches(lengths, epoch=1, group_by_length=True, **ARGS) == batches
    assert epoch_batches(lengths, epoch=2, group_by_length=True, **ARGS) != batches
    assert epoch_batches(lengths, epoch=1, group_by_length=True,
                         **{**ARGS, "seed": 4}) != batches
    # the steps do not run from the longest samples to the shortest
    first = [max(lengths[i] for i in b) for b in batches[:10]]
    assert first != sorted(first, reverse=True)


def test_grouped_batches_pad_far_less_than_shuffled_ones() -> None:
    lengths = _lengths()
    plain = _padding(lengths, epoch_batches(lengths, epoch=0, group_by_length=False, **ARGS))
    grouped = _padding(lengths, epoch_batches(lengths, epoch=0, group_by_length=True, **ARGS))
    assert plain > 0.3 and grouped < 0.05, (plain, grouped)


def _mixed_dataset(path: Path, count: int = 48) -> Path:
    rng = random.Random(5)
    rows = [{"prompt": "say: " + "ab" * rng.choice([1, 2, 30]), "answer": "x" * rng.randint(1, 40)}
            for _ in range(count)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_each_step_reports_its_padding_share_and_grouping_lowers_it(
    train, make_spec, tmp_path
) -> None:
    data = _mixed_dataset(tmp_path / "mixed.jsonl")
    overrides = {"actor": {"micro_batch_size": 2, "global_batch_size": 8},
                 "data": {"max_length": 128}, "runner": {"max_steps": 6}}
    _, grouped, _ = train(make_spec(overrides), train_files=[data])
    _, plain, _ = train(
        make_spec({**overrides, "data": {**overrides["data"], "group_by_length": False}}),
        train_files=[data],
    )
    shares = [m["padding_share"] for _, _, m in grouped.steps]
    plain_shares = [m["padding_share"] for _, _, m in plain.steps]
    assert len(shares) == 6 and all(0 <= s < 1 for s in shares + plain_shares)
    assert sum(shares) < 0.5 * sum(plain_shares), (shares, plain_shares)
    assert any("batches grouped by length" in line for line in grouped.logs)


@pytest.mark.parametrize("group_by_length", [True, False])
def test_resume_is_bit_exact_with_either_batching(
    train, make_spec, hooks_cls, tmp_path, group_by_length
) -> None:
    data = _mixed_dataset(tmp_path / "mixed.jsonl", count=24)
    spec = make_spec({"actor": {"micro_batch_size": 2, "global_batch_size": 4},
                      "data": {"max_length": 96, "group_by_length": group_by_length},
                      "runner": {"max_epochs": 2, "max_steps": -1, "save_interval": 4}})
    straight, straight_hooks, _ = train(spec, train_files=[data])
    crashing = hooks_cls(crash_at=9, keep_dir=tmp_path / "kept")
    with pytest.raises(hooks_cls.Crash):
        train(spec, hooks=crashing, train_files=[data])
    torch.manual_seed(7)
    resumed_hooks = hooks_cls()
    resumed, _, _ = train(spec, hooks=resumed_hooks, train_files=[data],
                          resume_dir=crashing.kept[4])  # crosses the epoch boundary at 6
    assert resumed_hooks.losses == straight_hooks.losses[4:]
    files = sorted(straight.output_dir.iterdir())
    assert [p.read_bytes() for p in files] == [
        (resumed.output_dir / p.name).read_bytes() for p in files
    ]
