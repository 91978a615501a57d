"""Model-quality metrics (names are a contract with the dashboard and alerts: docs/api.md lists them).

The per-version prediction families are built from VersionStats when /metrics is scraped (a custom
collector: nothing per request but the numpy counting in app/quality/stats.py); feedback, canary and
shadow events are rare enough for ordinary prometheus_client metrics.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from app.quality.drift import SIGNALS
from app.quality.stats import CONFIDENCE_BUCKETS, LENGTH_BUCKETS, VersionStats

CANARY_STAGES = ("start", "swap", "shadow")
CANARY_OUTCOMES = ("passed", "failed", "missing", "skipped")


def _buckets(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    cumulative = np.cumsum(counts).tolist()
    return [(repr(float(b)), c) for b, c in zip(bounds, cumulative, strict=False)] + [("+Inf", cumulative[-1])]


class QualityMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.versions: dict[int, VersionStats] = {}
        r = registry
        self.feedback = Counter(
            "sentiment_feedback_total", "Feedback received, by the version that answered and outcome.",
            ["version", "outcome"], registry=r,
        )  # fmt: skip
        self.confusion = Counter(
            "sentiment_feedback_confusion_total", "Feedback by version, predicted label and the label given.",
            ["version", "predicted", "actual"], registry=r,
        )  # fmt: skip
        self.feedback_rejected = Counter(
            "sentiment_feedback_rejected_total", "Feedback refused (nothing recorded), by error_type.", ["reason"],
            registry=r,
        )  # fmt: skip
        self.feedback_stored = Counter(
            "sentiment_feedback_stored_total", "Feedback rows appended (fsynced) to the feedback directory.", registry=r
        )
        self.feedback_write_errors = Counter(
            "sentiment_feedback_write_errors_total", "Feedback that could not be stored (disk error or size cap).",
            ["reason"], registry=r,
        )  # fmt: skip
        self.recent = Gauge(
            "sentiment_feedback_window_inputs", "Recent answers that can still take feedback.", registry=r
        )
        self.canary_runs = Counter(
            "sentiment_canary_runs_total", "Canary checks by stage (start, swap, shadow) and outcome.",
            ["stage", "outcome"], registry=r,
        )  # fmt: skip
        self.canary_status = Gauge(
            "sentiment_canary_status", "The active version's canary result (value 1): passed, missing, ...",
            ["version", "status"], registry=r,
        )  # fmt: skip
        self.canary_max_diff = Gauge(
            "sentiment_canary_max_prob_diff", "Largest |Δp| of the active version's canary vs its fp32 record.",
            ["version"], registry=r,
        )  # fmt: skip
        self.canary_tolerance = Gauge(
            "sentiment_canary_tolerance", "The |Δp| tolerance the active version's canary was held to.", ["version"],
            registry=r,
        )  # fmt: skip
        self.shadow_info = Gauge(
            "sentiment_shadow_info", "The shadow candidate being scored (value 1).", ["candidate"], registry=r,
        )  # fmt: skip
        self.shadow_inputs = Counter(
            "sentiment_shadow_inputs_total", "Live inputs offered to the shadow: scored, dropped (behind), failed.",
            ["candidate", "outcome"], registry=r,
        )  # fmt: skip
        self.shadow_agreements = Counter(
            "sentiment_shadow_agreements_total", "Shadow-scored inputs whose label equals the active version's.",
            ["candidate"], registry=r,
        )  # fmt: skip
        self.shadow_feedback = Counter(
            "sentiment_shadow_feedback_total", "Feedback on shadow-scored inputs by model (candidate/active), outcome.",
            ["candidate", "model", "outcome"], registry=r,
        )  # fmt: skip
        self.shadow_busy = Counter(
            "sentiment_shadow_busy_seconds_total", "CPU seconds the shadow spent (capped by shadow_max_busy).",
            ["candidate"], registry=r,
        )  # fmt: skip
        for stage in CANARY_STAGES:  # at 0 from the start, so a first failure shows in increase()
            for outcome in CANARY_OUTCOMES:
                self.canary_runs.labels(stage=stage, outcome=outcome)
        for reason in ("full", "io"):
            self.feedback_write_errors.labels(reason=reason)
        r.register(self)

    # ---- the custom collector -------------------------------------------------------------
    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        for stats in list(self.versions.values()):
            self._add(families, stats)
        yield from families

    def _families(self) -> list[Metric]:
        return [
            CounterMetricFamily(
                "sentiment_predictions", "Answers by version and predicted label.", labels=["version", "label"]
            ),
            HistogramMetricFamily(
                "sentiment_prediction_confidence", "Top probability of each answer.", labels=["version"]
            ),
            CounterMetricFamily(
                "sentiment_low_confidence",
                "Answers whose top probability is below low_confidence_threshold.",
                labels=["version"],
            ),
            HistogramMetricFamily("sentiment_input_tokens", "Tokens per input (after truncation).", labels=["version"]),
            GaugeMetricFamily(
                "sentiment_drift_psi",
                "PSI of the recent window against the version's reference, by signal.",
                labels=["version", "signal"],
            ),
            GaugeMetricFamily("sentiment_drift_window_inputs", "Inputs in the drift window.", labels=["version"]),
            GaugeMetricFamily(
                "sentiment_window_low_confidence_share",
                "Share of low-confidence answers in the drift window.",
                labels=["version"],
            ),
            GaugeMetricFamily(
                "sentiment_reference_low_confidence_share",
                "The same share on the dev split at publish.",
                labels=["version"],
            ),
            GaugeMetricFamily(
                "sentiment_reference_label_share",
                "Predicted-label shares on the dev split at publish.",
                labels=["version", "label"],
            ),
            GaugeMetricFamily("sentiment_reference_accuracy", "Dev accuracy recorded at publish.", labels=["version"]),
        ]

    def _add(self, families: list[Metric], s: VersionStats) -> None:
        predictions, confidence, low, tokens, psi, window, window_low, ref_low, ref_share, ref_acc = families
        v = str(s.version)
        for label, count in zip(s.labels, s.label_counts, strict=True):
            predictions.add_metric([v, label], count)  # type: ignore[attr-defined]
        confidence.add_metric([v], _buckets(CONFIDENCE_BUCKETS, s.conf_counts), s.conf_sum)  # type: ignore[attr-defined]
        low.add_metric([v], s.low)  # type: ignore[attr-defined]
        tokens.add_metric([v], _buckets(LENGTH_BUCKETS, s.len_counts), float(s.len_sum))  # type: ignore[attr-defined]
        window.add_metric([v], s.window.filled)  # type: ignore[attr-defined]
        if (drift := s.drift()) is not None:
            for signal in SIGNALS:
                psi.add_metric([v, signal], drift[signal])  # type: ignore[attr-defined]
        if (share := s.window_low_share()) is not None:
            window_low.add_metric([v], share)  # type: ignore[attr-defined]
        if (share := s.reference_low_share()) is not None:
            ref_low.add_metric([v], share)  # type: ignore[attr-defined]
        if s.reference is not None:
            for label, share in zip(s.labels, s.reference.predicted_label_shares, strict=True):
                ref_share.add_metric([v, label], share)  # type: ignore[attr-defined]
        if s.reference_accuracy is not None:
            ref_acc.add_metric([v], s.reference_accuracy)  # type: ignore[attr-defined]

    # ---- canary ---------------------------------------------------------------------------
    def set_canary(self, version: int, status: str, max_diff: float | None, tolerance: float | None) -> None:
        """The active version's canary (the previous version's series go with it)."""
        for gauge in (self.canary_status, self.canary_max_diff, self.canary_tolerance):
            gauge.clear()
        self.canary_status.labels(version=str(version), status=status).set(1)
        if max_diff is not None and tolerance is not None:
            self.canary_max_diff.labels(version=str(version)).set(max_diff)
            self.canary_tolerance.labels(version=str(version)).set(tolerance)
