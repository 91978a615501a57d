"""Long texts as overlapping windows (truncation mode `chunk`): how a text is cut, how its windows'
scores become the text's answer. Torch-free; the tokenizer that cuts is in inference/tokens.py.

Cutting. A text over the token limit becomes windows of at most `max_length` tokens, cut at token
boundaries by the Rust tokenizer, each framed with the model's special tokens ([CLS] ... [SEP]) like
any other input. Neighbouring windows share a quarter of a window's text tokens (`window_overlap`):
a sentence cut at one window's edge is read whole by the next, for 4/3 the compute of disjoint
windows (docs/long-texts.md measures 0, 1/4 and 1/2).

Combining (`combine_windows`). The text's probabilities are the mean of its windows' probabilities
weighted by each window's token count. Why this and not the alternatives:
- a mean of probabilities is a mixture of calibrated distributions (the temperature was fitted for
  one input = one distribution): each window's say is bounded by its weight. A mean of logits is a
  normalised geometric mean of the probabilities, in which one very sure window outvotes several
  that disagree (logit margins +8, -2, -2, -2: 62% for the first window's label; the mean of the
  probabilities says 34%);
- the maximum (most confident window) lets one sentence outvote the rest of a long review, and its
  score is the most extreme of many draws, biased towards overconfidence;
- weighting by length: the last window is usually short (a few tokens past the previous one), and
  a handful of tokens should not count as much as a full window of text.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def window_overlap(content_tokens: int) -> int:
    """Tokens two neighbouring windows share, given a window's room for text (limit minus special tokens)."""
    return max(0, content_tokens // 4)


def combine_windows(scores: np.ndarray, weights: Sequence[int], windows: Sequence[int]) -> np.ndarray:
    """One row per text: the `weights`-weighted mean of its consecutive window rows of `scores`.

    `windows[t]` is how many consecutive rows belong to text t; a text of one window keeps its row
    exactly (bit for bit), so chunk mode answers short texts as truncate mode does.
    """
    scores = np.asarray(scores, dtype=np.float64)
    counts = np.asarray(windows, dtype=np.int64)
    if counts.sum() != len(scores) or len(weights) != len(scores) or (counts < 1).any():
        raise ValueError(f"{len(scores)} rows, {len(weights)} weights and windows {list(windows)} do not match")
    w = np.asarray(weights, dtype=np.float64)
    if (w <= 0).any():
        raise ValueError("window weights must be positive token counts")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    combined = scores[starts].copy()
    for text in np.flatnonzero(counts > 1):
        rows = slice(starts[text], starts[text] + counts[text])
        combined[text] = (scores[rows] * w[rows, None]).sum(axis=0) / w[rows].sum()
    return combined


def text_lengths(lengths: Sequence[int], windows: Sequence[int]) -> list[int]:
    """Tokens per text: the sum over its windows (overlaps counted twice: what the model read)."""
    out, start = [], 0
    for count in windows:
        out.append(sum(lengths[start : start + count]))
        start += count
    return out
