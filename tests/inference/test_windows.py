"""Long texts as windows: the cut (the real MiniLM tokenizer) and the combination (a pure function)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from inference.tokens import encode, encode_windows, serving_tokenizer, windowing_tokenizer
from inference.windows import combine_windows, window_overlap

CLS, SEP = 101, 102
LIMIT = 16  # room for 14 text tokens per window
TEXT = " ".join(f"word{i} and then some more" for i in range(30))


@pytest.fixture(scope="module")
def serving(tokenizer: Any) -> Any:
    return serving_tokenizer(tokenizer, LIMIT)


@pytest.fixture(scope="module")
def windowing(serving: Any) -> Any:
    return windowing_tokenizer(serving, LIMIT)


def test_overlap_is_a_quarter_of_the_window() -> None:
    assert [window_overlap(n) for n in (510, 126, 14, 6, 3, 1)] == [127, 31, 3, 1, 0, 0]


def test_a_long_text_becomes_overlapping_framed_windows_that_cover_it(tokenizer: Any, windowing: Any) -> None:
    content = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    tok = encode_windows(windowing, [TEXT])
    (count,) = tok.windows
    assert count == len(tok.ids) > 3 and tok.truncated == [False]
    overlap = window_overlap(LIMIT - 2)
    rebuilt: list[int] = []
    for k, ids in enumerate(tok.ids):
        assert ids[0] == CLS and ids[-1] == SEP and len(ids) <= LIMIT  # each window is a whole input
        body = list(ids[1:-1])
        if k:
            assert body[:overlap] == rebuilt[-overlap:]  # neighbours share `overlap` tokens
            body = body[overlap:]
        rebuilt += body
    assert rebuilt == content  # nothing lost, nothing repeated beyond the overlap
    assert tok.lengths == [len(x) for x in tok.ids]


def test_texts_within_the_limit_are_encoded_as_the_serving_tokenizer_does(serving: Any, windowing: Any) -> None:
    texts = ["A fine film.", "Bad.", "x " * 14]
    plain, chunked = encode(serving, texts), encode_windows(windowing, texts)
    assert [list(x) for x in chunked.ids] == [list(x) for x in plain.ids]
    assert chunked.windows == [1, 1, 1]
    mixed = encode_windows(windowing, ["short", TEXT, "also short"])
    assert mixed.windows[0] == mixed.windows[2] == 1 and mixed.windows[1] > 1
    assert list(mixed.ids[0]) == list(encode(serving, ["short"]).ids[0])


def test_combining_is_the_length_weighted_mean_per_text() -> None:
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    combined = combine_windows(scores, weights=[10, 30, 5, 7], windows=[1, 2, 1])
    assert combined.shape == (3, 2)
    assert combined[0].tolist() == [0.9, 0.1] and combined[2].tolist() == [0.3, 0.7]  # one window: unchanged
    assert np.allclose(combined[1], (30 * scores[1] + 5 * scores[2]) / 35)
    assert np.allclose(combined.sum(axis=1), 1.0)  # a mixture of distributions is a distribution


def test_a_short_tail_window_counts_for_little() -> None:
    scores = np.array([[0.1, 0.9], [0.1, 0.9], [0.99, 0.01]])
    combined = combine_windows(scores, weights=[512, 512, 20], windows=[3])
    assert combined[0].argmax() == 1 and combined[0, 1] > 0.85


def test_single_windows_keep_their_rows_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((50, 3))
    assert np.array_equal(combine_windows(scores, [7] * 50, [1] * 50), scores)


@pytest.mark.parametrize(
    ("weights", "windows"),
    [([1, 1], [1, 1, 1]), ([1, 1, 1], [2]), ([1, 0, 1], [1, 2]), ([1, 1, 1], [3, 0])],
)
def test_mismatched_shapes_are_refused(weights: list[int], windows: list[int]) -> None:
    with pytest.raises(ValueError):
        combine_windows(np.ones((3, 2)), weights, windows)
