"""Drift of live predictions from the version's reference (the dev split at publish): population stability index.

    PSI(e, a) = sum over bins of (a_i - e_i) * ln(a_i / e_i)

with e the reference shares, a the live shares, each floored at PSI_FLOOR so an empty bin stays finite.
The usual reading: below 0.1 no shift, 0.1-0.25 a moderate shift, above 0.25 a significant one (the alert
threshold in deploy/prometheus/alerts.yml).

Signals, each against the bins stored in reference.json: `label` (shares of predicted labels),
`confidence` (top probability, in the reference's deciles) and `length` (tokens per input, deciles).

Window: the last `drift_window` inputs a version answered (default 2,000), in a ring buffer written on
the hot path (three slice copies per request) and read only when /metrics is scraped. A count, not a time
span, so a quiet service still compares like with like; under `drift_min_inputs` (default 200) no score is
exported, since a handful of answers says nothing about a distribution.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from store.quality import Reference

PSI_FLOOR = 1e-4
SIGNALS = ("label", "confidence", "length")


def psi(
    expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, floor: float = PSI_FLOOR
) -> float:
    """Population stability index of `actual` shares against `expected` shares (same bins, each summing to 1)."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), floor)
    a = np.maximum(np.asarray(actual, dtype=np.float64), floor)
    if e.shape != a.shape:
        raise ValueError(f"expected and actual need the same bins ({e.shape} vs {a.shape})")
    return float(np.sum((a - e) * np.log(a / e)))


def bin_counts(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Counts per bin by the store's Bins rule (store/quality.py `bin_of`): edges[i] < v <= edges[i+1]."""
    index = np.clip(np.searchsorted(np.asarray(edges), values, side="left") - 1, 0, len(edges) - 2)
    return np.bincount(index, minlength=len(edges) - 1)


def shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


class DriftWindow:
    """The last `size` inputs: predicted label, confidence and token length, overwritten oldest first.

    Plain lists: writing a few items into a list costs less than one numpy call; the scrape converts."""

    __slots__ = ("confidence", "filled", "labels", "lengths", "pos", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.labels: list[int] = [0] * size
        self.confidence: list[float] = [0.0] * size
        self.lengths: list[int] = [0] * size
        self.pos = 0
        self.filled = 0

    def add(self, labels: Sequence[int], confidence: Sequence[float], lengths: Sequence[int]) -> None:
        n = len(labels)
        size = self.size
        if n >= size:
            self.labels[:], self.confidence[:], self.lengths[:] = labels[-size:], confidence[-size:], lengths[-size:]
            self.pos, self.filled = 0, size
            return
        pos, end = self.pos, self.pos + n
        if end <= size:
            self.labels[pos:end], self.confidence[pos:end], self.lengths[pos:end] = labels, confidence, lengths
        else:
            k = size - pos
            self.labels[pos:], self.labels[: n - k] = labels[:k], labels[k:]
            self.confidence[pos:], self.confidence[: n - k] = confidence[:k], confidence[k:]
            self.lengths[pos:], self.lengths[: n - k] = lengths[:k], lengths[k:]
        self.pos = end % size
        self.filled = min(size, self.filled + n)

    def view(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = self.filled
        return (
            np.asarray(self.labels[:n], dtype=np.int64),
            np.asarray(self.confidence[:n], dtype=np.float64),
            np.asarray(self.lengths[:n], dtype=np.int64),
        )


def drift_scores(window: DriftWindow, reference: Reference, n_labels: int) -> dict[str, float]:
    """PSI per signal of the window against the reference."""
    labels, confidence, lengths = window.view()
    return {
        "label": psi(reference.predicted_label_shares, shares(np.bincount(labels, minlength=n_labels))),
        "confidence": psi(reference.confidence.shares, shares(bin_counts(confidence, reference.confidence.edges))),
        "length": psi(reference.length.shares, shares(bin_counts(lengths, reference.length.edges))),
    }
