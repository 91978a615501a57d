"""Per-version prediction statistics, updated on the hot path at the cost of a few list updates per input.

Counts live in plain lists instead of prometheus_client children: observing every input in a histogram
costs a lock and a bucket search per value (and numpy costs ~1 µs per call whatever the size), while here a
small request is counted in a short Python loop and a large one with one `bincount` per quantity; the
counts become Prometheus families only when /metrics is scraped
(app/quality/metrics.py). Everything runs on the event loop (the predict route, the shadow's completions
and the scrape), so no lock is needed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

import numpy as np

from app.quality.drift import DriftWindow, drift_scores
from store.quality import Reference

# Top probability (le): finer near 1, where a calibrated classifier answers most of the time.
CONFIDENCE_BUCKETS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0)
# Tokens per input (le): up to the largest token limit a BERT-family encoder has.
LENGTH_BUCKETS = (4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024, 2048, 8192)
_CONF, _LEN = np.asarray(CONFIDENCE_BUCKETS), np.asarray(LENGTH_BUCKETS)
# Above this many inputs per request, numpy's vector calls beat the per-input Python loop (measured).
BULK = 24


class VersionStats:
    """What one model version answered: label counts, confidence and length histograms, drift window."""

    __slots__ = (
        "conf_counts",
        "conf_sum",
        "label_counts",
        "labels",
        "len_counts",
        "len_sum",
        "low",
        "low_threshold",
        "min_inputs",
        "reference",
        "reference_accuracy",
        "version",
        "window",
    )

    def __init__(
        self,
        version: int,
        labels: Sequence[str],
        reference: Reference | None,
        low_threshold: float,
        window: int,
        min_inputs: int,
        reference_accuracy: float | None = None,
    ) -> None:
        self.version = version
        self.labels = tuple(labels)
        self.reference = reference
        self.low_threshold = low_threshold
        self.min_inputs = min_inputs
        self.reference_accuracy = reference_accuracy
        # Plain lists: on a request of a few texts, Python item updates beat numpy's per-call overhead.
        self.label_counts = [0] * len(labels)
        self.conf_counts = [0] * (len(CONFIDENCE_BUCKETS) + 1)  # last: +Inf
        self.len_counts = [0] * (len(LENGTH_BUCKETS) + 1)
        self.conf_sum = 0.0
        self.len_sum = 0
        self.low = 0
        self.window = DriftWindow(window)

    def observe(self, probs: np.ndarray, lengths: Sequence[int]) -> list[int]:
        """Count one request's answers (calibrated probabilities [n, labels]); returns the predicted label ids.

        Ties go to the first label, as numpy's argmax (the answer's label) does."""
        n = len(lengths)
        if n > BULK:
            return self._observe_bulk(probs, lengths)
        predicted: list[int] = []
        label_counts, conf_counts, len_counts = self.label_counts, self.conf_counts, self.len_counts
        threshold = self.low_threshold
        window = self.window
        w_labels, w_conf, w_len = window.labels, window.confidence, window.lengths
        pos, size = window.pos, window.size
        low = 0
        conf_sum = 0.0
        binary = len(label_counts) == 2
        for row, length in zip(probs.tolist(), lengths, strict=True):
            if binary:  # the common case, without the inner loop
                k, best = (1, row[1]) if row[1] > row[0] else (0, row[0])
            else:
                k, best = 0, row[0]
                for j in range(1, len(row)):
                    if row[j] > best:
                        k, best = j, row[j]
            label_counts[k] += 1
            # bisect_left: the first bucket whose upper bound (le) is >= the value, Prometheus' rule.
            conf_counts[bisect_left(CONFIDENCE_BUCKETS, best)] += 1
            len_counts[bisect_left(LENGTH_BUCKETS, length)] += 1
            low += best < threshold
            conf_sum += best
            predicted.append(k)
            # The drift window's ring, written in place (DriftWindow.add is the general form).
            w_labels[pos], w_conf[pos], w_len[pos] = k, best, length
            pos = pos + 1 if pos + 1 < size else 0
        window.pos = pos
        window.filled = min(size, window.filled + n)
        self.conf_sum += conf_sum
        self.len_sum += sum(lengths)
        self.low += low
        return predicted

    def _observe_bulk(self, probs: np.ndarray, lengths: Sequence[int]) -> list[int]:
        predicted = probs.argmax(axis=1)
        confidence = probs.max(axis=1)
        for counts, found in (
            (self.label_counts, np.bincount(predicted, minlength=len(self.labels))),
            (self.conf_counts, np.bincount(np.searchsorted(_CONF, confidence), minlength=len(self.conf_counts))),
            (self.len_counts, np.bincount(np.searchsorted(_LEN, lengths), minlength=len(self.len_counts))),
        ):
            for i, c in enumerate(found.tolist()):
                counts[i] += c
        self.conf_sum += float(confidence.sum())
        self.len_sum += sum(lengths)
        self.low += int(np.count_nonzero(confidence < self.low_threshold))
        labels = predicted.tolist()
        self.window.add(labels, confidence.tolist(), lengths)
        return labels

    @property
    def total(self) -> int:
        return sum(self.label_counts)

    def drift(self) -> dict[str, float] | None:
        """PSI per signal over the window, None without a reference or with too few inputs yet."""
        if self.reference is None or self.window.filled < self.min_inputs:
            return None
        return drift_scores(self.window, self.reference, len(self.labels))

    def window_low_share(self) -> float | None:
        if self.window.filled == 0:
            return None
        w = self.window
        return sum(c < self.low_threshold for c in w.confidence[: w.filled]) / w.filled

    def reference_low_share(self) -> float | None:
        return None if self.reference is None else self.reference.low_confidence_share(self.low_threshold)

    def describe(self) -> dict[str, object]:
        drift = self.drift()
        return {
            "answers": self.total,
            "predicted": dict(zip(self.labels, self.label_counts, strict=True)),
            "low_confidence_threshold": self.low_threshold,
            "low_confidence_answers": self.low,
            "reference": self.reference is not None,
            "window_inputs": self.window.filled,
            "window_low_confidence_share": self.window_low_share(),
            "reference_low_confidence_share": self.reference_low_share(),
            "drift_psi": {k: round(v, 6) for k, v in drift.items()} if drift else None,
        }
