"""Prediction statistics on the hot path (app/quality/stats.py) and their Prometheus families."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.quality.metrics import QualityMetrics
from app.quality.stats import BULK, VersionStats
from store.quality import Bins, Reference

LABELS = ("negative", "positive")
REFERENCE = Reference(100, (0.5, 0.5), Bins((0.5, 0.8, 1.0), (0.5, 0.5)), Bins((0.0, 8.0, 512.0), (0.5, 0.5)),
                      ((0.5, 0.0), (0.6, 0.2), (0.7, 0.4)), 0.81)  # fmt: skip


def stats(**kwargs: object) -> VersionStats:
    return VersionStats(3, LABELS, REFERENCE, 0.6, window=50, min_inputs=10, reference_accuracy=0.81, **kwargs)  # type: ignore[arg-type]


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_small_and_large_requests_are_counted_the_same_way() -> None:
    rng = np.random.default_rng(1)
    probs = rng.dirichlet([1, 1], BULK * 3)
    probs[0] = [0.5, 0.5]  # a tie goes to the first label, like numpy's argmax in the answer
    lengths = rng.integers(1, 600, len(probs)).tolist()
    loop, bulk = stats(), stats()
    predicted = [k for i in range(0, len(probs), 4) for k in loop.observe(probs[i : i + 4], lengths[i : i + 4])]
    assert predicted == bulk.observe(probs, lengths) == probs.argmax(axis=1).tolist()
    for name in ("label_counts", "conf_counts", "len_counts", "low", "len_sum"):
        assert getattr(loop, name) == getattr(bulk, name), name
    assert loop.conf_sum == pytest.approx(bulk.conf_sum)
    assert sorted(loop.window.view()[1].tolist()) == pytest.approx(sorted(bulk.window.view()[1].tolist()))


def test_the_families_on_a_scrape() -> None:
    registry = CollectorRegistry(auto_describe=True)
    metrics = QualityMetrics(registry)
    s = metrics.versions[3] = stats()
    s.observe(np.array([[0.9, 0.1], [0.45, 0.55], [0.2, 0.8]]), [3, 12, 700])
    got = samples(registry)
    v = (("version", "3"),)
    assert got[("sentiment_predictions_total", (("label", "negative"), *v))] == 1
    assert got[("sentiment_predictions_total", (("label", "positive"), *v))] == 2
    assert got[("sentiment_prediction_confidence_bucket", (("le", "0.55"), *v))] == 1
    assert got[("sentiment_prediction_confidence_bucket", (("le", "0.8"), *v))] == 2
    assert got[("sentiment_prediction_confidence_bucket", (("le", "+Inf"), *v))] == 3
    assert got[("sentiment_prediction_confidence_sum", v)] == pytest.approx(2.25)
    assert got[("sentiment_low_confidence_total", v)] == 1
    assert got[("sentiment_input_tokens_bucket", (("le", "4.0"), *v))] == 1
    assert got[("sentiment_input_tokens_bucket", (("le", "512.0"), *v))] == 2
    assert got[("sentiment_input_tokens_sum", v)] == 715
    assert got[("sentiment_drift_window_inputs", v)] == 3
    assert got[("sentiment_window_low_confidence_share", v)] == pytest.approx(1 / 3)
    assert got[("sentiment_reference_low_confidence_share", v)] == pytest.approx(0.2)
    assert got[("sentiment_reference_accuracy", v)] == 0.81
    assert ("sentiment_drift_psi", (("signal", "label"), *v)) not in got  # 3 < min_inputs: no score yet
    s.observe(np.array([[0.1, 0.9]] * 10), [20] * 10)
    got = samples(registry)
    assert got[("sentiment_drift_psi", (("signal", "label"), *v))] > 0.25
    assert {k[1][0][1] for k in got if k[0] == "sentiment_drift_psi"} == {"label", "confidence", "length"}


def test_promtool_accepts_the_exposition() -> None:
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: run scripts/ci/install-system.sh prometheus"
    registry = CollectorRegistry(auto_describe=True)
    metrics = QualityMetrics(registry)
    metrics.versions[3] = stats()
    metrics.versions[3].observe(np.array([[0.9, 0.1]] * 20), [5] * 20)
    metrics.set_canary(3, "passed", 0.001, 0.02)
    metrics.feedback.labels(version="3", outcome="correct").inc()
    out = subprocess.run([promtool, "check", "metrics"], input=generate_latest(registry), capture_output=True)
    assert out.returncode == 0, out.stdout + out.stderr
