"""Batch selection as a pure function of input lengths."""

from __future__ import annotations

import random

from app.engine.grouping import grow_batch
from inference.padding import padded_length


def padded(lengths: list[int], picked: list[int]) -> int:
    return padded_length(max(lengths[i] for i in picked)) * len(picked)


def test_anchor_is_always_included_even_when_it_packs_badly() -> None:
    lengths = [500] + [5] * 40
    picked = grow_batch(lengths, anchor=0, max_size=16, max_tokens=4096, max_padding_ratio=1.3)
    assert 0 in picked


def test_budgets_are_respected() -> None:
    rng = random.Random(0)
    for _ in range(200):
        lengths = [rng.randint(1, 300) for _ in range(rng.randint(1, 80))]
        anchor = rng.randrange(len(lengths))
        picked = grow_batch(lengths, anchor, max_size=16, max_tokens=2048)
        assert anchor in picked and len(picked) <= 16 and len(set(picked)) == len(picked)
        assert len(picked) == 1 or padded(lengths, picked) <= 2048


def test_neighbours_with_least_padding_are_taken() -> None:
    lengths = [20, 3, 19, 100, 21, 4, 22, 99]
    picked = grow_batch(lengths, anchor=0, max_size=4, max_tokens=10_000)
    assert sorted(lengths[i] for i in picked) == [19, 20, 21, 22]


def test_padding_ratio_stops_growth_once_min_fill_is_reached() -> None:
    lengths = [20] * 8 + [64] * 8
    unlimited = grow_batch(lengths, anchor=0, max_size=16, max_tokens=10_000)
    assert len(unlimited) == 16
    packed = grow_batch(lengths, anchor=0, max_size=16, max_tokens=10_000, max_padding_ratio=1.3)
    assert sorted(lengths[i] for i in packed) == [20] * 8
    # Below min_fill (8 inputs) and min_fill_tokens (128) a step above the ratio is taken while the batch
    # holds at most fill_slack (32) padded positions: 12 x 4 / 44 = 1.09 would pass anyway, 12 x 3 / 32 =
    # 1.125 only by the slack; a 64 would add 212 padded positions.
    lengths = [10, 12, 10, 12] + [64] * 8
    small_fill = grow_batch(lengths, anchor=0, max_size=16, max_tokens=10_000, max_padding_ratio=1.1)
    assert sorted(lengths[i] for i in small_fill) == [10, 10, 12, 12]


def test_a_short_input_is_not_padded_to_a_long_one_before_the_batch_fills() -> None:
    # A shallow queue (two workers cut batches early): 10 + 300 would be 290 padded positions.
    assert grow_batch([10, 300], anchor=0, max_size=64, max_tokens=10_000, max_padding_ratio=1.1) == [0]
    # A few short inputs still travel together although their ratio (12 x 3 / 27 = 1.33) is above the limit.
    assert len(grow_batch([8, 7, 12], anchor=0, max_size=64, max_tokens=10_000, max_padding_ratio=1.1)) == 3
    # Without a ratio limit (CUDA) everything within the budgets goes.
    assert len(grow_batch([10, 300], anchor=0, max_size=64, max_tokens=10_000)) == 2


def test_a_long_anchor_is_enough_work_alone() -> None:
    # A 400-token input already fills a batch: it must not drag short inputs up to its length.
    lengths = [400] + [20] * 30
    picked = grow_batch(lengths, anchor=0, max_size=64, max_tokens=100_000, max_padding_ratio=1.1)
    assert picked == [0]
    assert len(grow_batch(lengths, anchor=1, max_size=64, max_tokens=100_000, max_padding_ratio=1.1)) == 30


def test_width_rounding_counts_against_the_token_budget() -> None:
    lengths = [9] * 10
    assert len(grow_batch(lengths, anchor=0, max_size=64, max_tokens=90, multiple=1)) == 10
    assert len(grow_batch(lengths, anchor=0, max_size=64, max_tokens=90, multiple=8)) == 5  # 16 x 5 = 80


def test_ratio_limit_keeps_padding_low_on_mixed_lengths() -> None:
    rng = random.Random(1)
    lengths = [rng.randint(5, 60) for _ in range(64)]
    everything = sum(lengths)
    assert padded(lengths, list(range(64))) > 1.5 * everything  # one ragged batch of all of them
    picked = grow_batch(lengths, anchor=0, max_size=64, max_tokens=100_000, max_padding_ratio=1.3)
    assert 0 in picked and len(picked) >= 8
    assert max(lengths[i] for i in picked) * len(picked) < 1.5 * sum(lengths[i] for i in picked)
