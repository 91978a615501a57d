"""PSI and the drift window (app/quality/drift.py): pure functions with known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.quality.drift import PSI_FLOOR, DriftWindow, bin_counts, drift_scores, psi
from store.quality import Bins, Reference, bin_of


def test_psi_is_zero_for_equal_shares_and_matches_the_formula() -> None:
    assert psi([0.25, 0.75], [0.25, 0.75]) == 0.0
    expected = (0.5 - 0.25) * math.log(0.5 / 0.25) + (0.5 - 0.75) * math.log(0.5 / 0.75)
    assert psi([0.25, 0.75], [0.5, 0.5]) == pytest.approx(expected)
    assert psi([0.25, 0.75], [0.5, 0.5]) == pytest.approx(0.2747, abs=1e-4)  # a moderate shift
    assert psi([0.5, 0.5], [0.5, 0.5]) == psi([0.5, 0.5], [0.5, 0.5])  # symmetric in form, never negative
    assert psi([0.1] * 10, list(np.random.default_rng(0).dirichlet([1] * 10))) > 0


def test_an_empty_bin_stays_finite_through_the_floor() -> None:
    value = psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2])
    assert math.isfinite(value)
    assert value == pytest.approx(2 * (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.2 - PSI_FLOOR) * math.log(0.2 / PSI_FLOOR))
    with pytest.raises(ValueError, match="same bins"):
        psi([0.5, 0.5], [1.0])


def test_numpy_binning_follows_the_store_rule() -> None:
    edges = [0.5, 0.62, 0.8, 0.93, 1.0]
    values = np.array([0.3, 0.5, 0.55, 0.62, 0.7, 0.8, 0.9, 0.93, 0.99, 1.0, 1.2])
    expected = np.bincount([bin_of(float(v), edges) for v in values], minlength=4)
    assert bin_counts(values, edges).tolist() == expected.tolist() == [4, 2, 2, 3]


def test_the_window_keeps_the_last_inputs_across_wrap_around() -> None:
    window = DriftWindow(5)
    window.add([1, 1, 1], [0.9, 0.8, 0.7], [3, 4, 5])
    window.add([0, 0, 0, 0], [0.6, 0.6, 0.6, 0.6], [9, 9, 9, 9])
    labels, confidence, lengths = window.view()
    assert window.filled == 5 and sorted(labels.tolist()) == [0, 0, 0, 0, 1]
    assert sorted(lengths.tolist()) == [5, 9, 9, 9, 9] and confidence.min() == pytest.approx(0.6)
    window.add(list(range(7)), [0.5] * 7, list(range(7)))  # more than the window: the newest five
    assert sorted(window.view()[0].tolist()) == [2, 3, 4, 5, 6]


def test_drift_scores_react_to_a_changed_label_mix() -> None:
    reference = Reference(
        examples=100,
        predicted_label_shares=(0.5, 0.5),
        confidence=Bins((0.5, 0.75, 1.0), (0.5, 0.5)),
        length=Bins((0.0, 10.0, 512.0), (0.5, 0.5)),
        low_confidence=(),
        accuracy=None,
    )
    window = DriftWindow(100)
    window.add([0, 1] * 50, [0.6, 0.9] * 50, [5, 20] * 50)
    assert drift_scores(window, reference, 2) == {"label": 0.0, "confidence": 0.0, "length": 0.0}
    window.add([1] * 100, [0.99] * 100, [5] * 100)
    scores = drift_scores(window, reference, 2)
    assert scores["label"] > 0.25 and scores["confidence"] > 0.25 and scores["length"] > 0.25
