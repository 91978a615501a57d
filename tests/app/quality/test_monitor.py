"""The quality state across versions (app/quality/monitor.py): which versions keep statistics, the hook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from app.config import Settings
from app.quality.metrics import QualityMetrics
from app.quality.monitor import QualityMonitor
from inference.canary import CanaryReport
from inference.source import ModelSource

LABELS = ["negative", "positive"]


def source(version: int) -> ModelSource:
    return ModelSource("sentiment", version, Path("/nowhere"), {"metrics": {"dev": {"accuracy": 0.8}}}, LABELS, 1.0)


def test_the_versions_used_last_keep_their_statistics() -> None:
    monitor = QualityMonitor(Settings(), QualityMetrics(CollectorRegistry()))
    for version in (5, 2, 6, 2, 7):  # a rollback to 2 makes it recent again
        monitor.track(source(version))
    assert list(monitor.metrics.versions) == [6, 2, 7]
    assert monitor.metrics.versions[7].reference_accuracy == 0.8


def test_observe_counts_and_remembers_answers_for_feedback() -> None:
    monitor = QualityMonitor(Settings(), QualityMetrics(CollectorRegistry()))
    monitor.track(source(1), CanaryReport("passed", 1, "ok"))
    monitor.observe("req", source(1), np.array([[0.2, 0.8], [0.7, 0.3]]), [4, 9], ["a", "b"])
    answered = monitor.recent.get("req")
    assert answered is not None and answered.predicted == [1, 0] and answered.texts is None  # texts not kept
    assert monitor.metrics.versions[1].label_counts == [1, 1]
    assert monitor.describe(1)["canary"]["status"] == "passed"
    monitor.observe("other", source(3), np.array([[0.9, 0.1]]), [2], ["c"])  # an untracked version still counts
    assert monitor.metrics.versions[3].label_counts == [1, 0]


def test_feedback_off_keeps_no_record() -> None:
    monitor = QualityMonitor(Settings(feedback_records=0), QualityMetrics(CollectorRegistry()))
    monitor.track(source(1))
    monitor.observe("req", source(1), np.array([[0.2, 0.8]]), [4], ["a"])
    assert monitor.recent.get("req") is None and monitor.metrics.versions[1].total == 1
