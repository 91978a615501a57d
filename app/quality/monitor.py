"""The service's model-quality state, and the one hook on the request path (`observe`).

Per version (the active one, the one before it while its requests finish, and a shadow candidate):
prediction statistics and the drift window (app/quality/stats.py), the canary verdict. Across versions:
the record of recent answers that feedback refers to, the feedback book and the shadow scorer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from app.config import Settings
from app.quality.feedback import FeedbackBook
from app.quality.feedback_log import FeedbackLog
from app.quality.metrics import QualityMetrics
from app.quality.recent import Answered, RecentAnswers
from app.quality.stats import VersionStats
from inference.canary import CanaryReport
from store.quality import read_reference

if TYPE_CHECKING:
    from app.quality.shadow import ShadowScorer
    from inference.source import ModelSource

log = logging.getLogger("app.quality")

KEPT_VERSIONS = 3  # statistics kept for the newest versions seen (active, previous, shadow); older ones go


class QualityMonitor:
    def __init__(self, settings: Settings, metrics: QualityMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.recent = RecentAnswers(settings.feedback_records, settings.feedback_max_age_s)
        directory = settings.feedback_dir
        feedback_log = None
        if directory is not None:
            feedback_log = FeedbackLog(directory, settings.feedback_max_file_bytes, settings.feedback_max_total_bytes)
        self.feedback = FeedbackBook(self.recent, metrics, feedback_log)
        self.feedback_enabled = settings.feedback_records > 0
        self._store_text = settings.feedback_store_text
        self.shadow: ShadowScorer | None = None
        self.canary: dict[int, CanaryReport] = {}
        metrics.recent.set_function(lambda: float(self.recent.inputs))

    # ---- versions ------------------------------------------------------------------------
    def track(self, source: ModelSource, report: CanaryReport | None = None, active: bool = True) -> VersionStats:
        """Start (or keep) statistics for a version about to answer; the active one's canary becomes the gauge."""
        versions = self.metrics.versions
        stats = versions.pop(source.version, None) or self._new_stats(source)
        versions[source.version] = stats  # newest last: the dict's order is the order versions were used in
        shadow = self.shadow.version if self.shadow is not None else None
        for old in [v for v in versions if v not in (source.version, shadow)][: max(0, len(versions) - KEPT_VERSIONS)]:
            del versions[old]
            self.canary.pop(old, None)
        if report is not None:
            self.canary[source.version] = report
        if active:
            # Series at 0 from the start: increase()/rate() miss a counter's first increment otherwise.
            version = str(source.version)
            for outcome in ("correct", "incorrect"):
                self.metrics.feedback.labels(version=version, outcome=outcome)
            for predicted in source.labels:
                for actual in source.labels:
                    self.metrics.confusion.labels(version=version, predicted=predicted, actual=actual)
            report = self.canary.get(source.version)
            status = report.status if report is not None else "missing"
            tol = report.tolerance.max_prob_diff if report is not None and report.tolerance is not None else None
            self.metrics.set_canary(source.version, status, report.max_prob_diff if report else None, tol)
        return stats

    def _new_stats(self, source: ModelSource) -> VersionStats:
        s = self.settings
        try:
            reference = read_reference(source.path, source.labels)
        except (OSError, ValueError) as exc:  # servable versions were checked; a file changed since is not trusted
            log.warning("version %d: reference distributions unreadable (%s); no drift scores", source.version, exc)
            reference = None
        if reference is None:
            log.warning(
                "version %d has no reference distributions (published before them): no drift scores", source.version
            )
        dev = (source.manifest.get("metrics") or {}).get("dev") or {}
        accuracy = dev.get("accuracy") if isinstance(dev, dict) else None
        if not isinstance(accuracy, int | float) and reference is not None:
            accuracy = reference.accuracy
        return VersionStats(
            source.version,
            source.labels,
            reference,
            s.low_confidence_threshold,
            s.drift_window,
            s.drift_min_inputs,
            float(accuracy) if isinstance(accuracy, int | float) else None,
        )

    # ---- the request path ------------------------------------------------------------------
    def observe(
        self, request_id: str, source: ModelSource, probs: np.ndarray, lengths: Sequence[int], texts: Sequence[str]
    ) -> None:
        """Count one answered request, remember it for feedback, offer it to the shadow (a few µs)."""
        stats = self.metrics.versions.get(source.version)
        if stats is None:
            stats = self.track(source, active=False)
        predicted = stats.observe(probs, lengths)
        shadow = self.shadow
        if not self.feedback_enabled and shadow is None:
            return
        answered = Answered(
            source.version,
            source.name,
            stats.labels,
            probs,
            predicted,
            texts if self._store_text else None,
            time.monotonic(),
            [False] * len(predicted),
        )
        if self.feedback_enabled:
            self.recent.add(request_id, answered)
        if shadow is not None:
            shadow.offer(answered, texts)

    def describe(self, version: int) -> dict[str, Any]:
        """The `quality` entry of /v1/models for a version."""
        stats = self.metrics.versions.get(version)
        report = self.canary.get(version)
        return {
            "canary": report.describe() if report is not None else {"status": "missing", "version": version},
            "predictions": stats.describe() if stats is not None else None,
            "reference_accuracy": stats.reference_accuracy if stats is not None else None,
            "feedback": {
                "enabled": self.feedback_enabled,
                "stored": self.feedback.log is not None,
                "store_text": self._store_text,
                "window_inputs": self.recent.inputs,
            },
        }
