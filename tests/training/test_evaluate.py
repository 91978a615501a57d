from __future__ import annotations

import numpy as np
import pytest

from inference.scores import softmax
from training.calibrate import calibration_summary, fit_temperature
from training.evaluate import classification_report, expected_calibration_error, reliability_bins


def test_report_on_hand_checked_predictions() -> None:
    # true:      0  0  1  1  2  2
    # predicted: 0  1  1  1  2  0
    logits = np.array([[3, 0, 0], [0, 3, 0], [0, 3, 0], [0, 3, 0], [0, 0, 3], [3, 0, 0]], dtype=float)
    report = classification_report(logits, [0, 0, 1, 1, 2, 2], ["neg", "neu", "pos"])
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert report["per_class"]["neu"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    f1s = [0.5, 0.8, 2 / 3]
    assert report["macro_f1"] == pytest.approx(sum(f1s) / 3)
    p_correct = np.exp(3) / (np.exp(3) + 2)
    assert report["nll"] == pytest.approx(-(4 * np.log(p_correct) + 2 * np.log(1 / (np.exp(3) + 2))) / 6)


def test_class_absent_from_predictions_and_labels_still_reported() -> None:
    report = classification_report(np.array([[2.0, 0, 0], [0, 2.0, 0]]), [0, 1], ["a", "b", "c"])
    assert report["per_class"]["c"]["support"] == 0
    assert report["confusion_matrix"][2] == [0, 0, 0]


def test_ece_matches_a_hand_computation() -> None:
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 1, 0, 0])
    # bin (0.867, 0.933]: conf 0.9, acc 0.5, weight 2/4; bin (0.533, 0.6]: conf 0.6, acc 0.5, weight 2/4
    assert expected_calibration_error(probs, labels) == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    bins = reliability_bins(probs, labels)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 4
    assert expected_calibration_error(np.array([[1.0, 0.0]]), np.array([0])) == pytest.approx(0.0)


def test_temperature_fit_recovers_the_generating_temperature() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 3)) * 2
    cumulative = softmax(true_logits).cumsum(axis=1)
    labels = (rng.random((len(true_logits), 1)) > cumulative).sum(axis=1)  # one draw per row
    overconfident = true_logits * 2.5  # a model that is 2.5x too sure of itself
    temperature = fit_temperature(overconfident, labels)
    assert temperature == pytest.approx(2.5, rel=0.1)
    summary = calibration_summary(overconfident, labels, temperature)
    assert summary["nll_after"] < summary["nll_before"]
    assert summary["ece_after"] < summary["ece_before"]


def test_temperature_never_changes_predictions() -> None:
    logits = np.random.default_rng(1).normal(size=(50, 4))
    assert (softmax(logits, 3.0).argmax(1) == softmax(logits).argmax(1)).all()
