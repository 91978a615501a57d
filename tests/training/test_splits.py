from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from training.splits import Row, assign_split, dedupe, fingerprint, hash_split, normalise


def _rows(n: int) -> list[Row]:
    return [
        Row(f"Review number {i}: quite something", "positive" if i % 2 else "negative", "f.csv", i) for i in range(n)
    ]


def test_split_is_independent_of_row_order_and_neighbours() -> None:
    rows = _rows(2000)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    a = hash_split(rows, 0.1, 0.1)
    b = hash_split(shuffled[:1000], 0.1, 0.1)  # half the data: the other half's presence is irrelevant
    where_a = {r.text: split for split, part in a.items() for r in part}
    for split, part in b.items():
        for row in part:
            assert where_a[row.text] == split


def test_split_proportions_follow_the_fractions() -> None:
    sizes = {k: len(v) for k, v in hash_split(_rows(5000), 0.1, 0.2).items()}
    assert 400 < sizes["dev"] < 600
    assert 850 < sizes["test"] < 1150


def test_near_duplicates_share_a_split_so_nothing_leaks() -> None:
    # Spelling variants that normalise equal can never straddle two splits.
    for i in range(300):
        text = f"A  Film,  number {i}"
        assert assign_split(text, 0.1, 0.1) == assign_split(f" a film, NUMBER {i} ", 0.1, 0.1)


@given(st.text(min_size=1, max_size=80))
def test_normalise_is_idempotent_and_assign_split_deterministic(text: str) -> None:
    assert normalise(normalise(text)) == normalise(text)
    assert assign_split(text, 0.1, 0.1) == assign_split(text, 0.1, 0.1)


def test_dedupe_keeps_first_and_drops_conflicts() -> None:
    rows = [
        Row("Great film", "positive", "f", 1),
        Row("great   FILM", "positive", "f", 2),
        Row("Bad film", "negative", "f", 3),
        Row("bad film", "positive", "f", 4),
    ]
    kept, stats = dedupe(rows)
    assert [r.row for r in kept] == [1]
    assert (stats.duplicates, stats.conflicting) == (2, 1)


def test_fingerprint_ignores_order_but_not_content() -> None:
    base = {"train": [("positive", "a"), ("negative", "b")], "dev": [("positive", "c")]}
    assert fingerprint(base) == fingerprint(
        {"dev": [("positive", "c")], "train": [("negative", "b"), ("positive", "a")]}
    )
    assert fingerprint(base) != fingerprint({**base, "dev": [("negative", "c")]})
    assert fingerprint(base) != fingerprint({"train": base["train"] + base["dev"]})
