"""The canary rule (inference/canary.py): tolerance from the parity records, and the verdict."""

from __future__ import annotations

import numpy as np
import pytest

from inference.canary import judge, tolerance

REF = np.array([[0.9, 0.1], [0.3, 0.7], [0.51, 0.49], [0.05, 0.95]])
TEXTS = ["a", "b", "c", "d"]
TOKENS = [3, 4, 5, 6]


def test_tolerance_adds_the_records_that_admitted_precision_and_layout() -> None:
    assert tolerance(0.02, "fp32", False, None, None).max_prob_diff == pytest.approx(0.02)
    bf16 = tolerance(0.02, "bf16", True, {"max_prob_diff": 0.01}, {"max_prob_diff": 0.003})
    assert bf16.max_prob_diff == pytest.approx(0.033) and bf16.notes == ()
    assert bf16.describe()["precision_parity"] == 0.01 and bf16.describe()["packing_parity"] == 0.003
    # fp32 needs no precision record; a padded batch needs no packing record.
    assert tolerance(0.02, "fp32", False, {"max_prob_diff": 0.5}, {"max_prob_diff": 0.5}).max_prob_diff == 0.02


def test_an_unmeasured_precision_gets_only_the_margin_and_says_so() -> None:
    tol = tolerance(0.02, "int8", True, None, None)
    assert tol.max_prob_diff == pytest.approx(0.02)
    assert any("int8: no parity record" in n for n in tol.notes) and any("packed" in n for n in tol.notes)


def test_answers_within_tolerance_pass() -> None:
    served = REF + np.array([[-0.01, 0.01], [0.01, -0.01], [-0.015, 0.015], [0.0, 0.0]])
    report = judge(7, TEXTS, REF, served, TOKENS, TOKENS, tolerance(0.02, "fp32", False, None, None))
    assert report.status == "passed" and not report.refused
    assert report.max_prob_diff == pytest.approx(0.015)
    # The near tie (gap 0.02 <= 2 x 0.02) may flip; it is exempt from the label rule.
    assert report.agreement == 0.75 and report.required_agreement == 0.75
    assert report.describe()["tolerance"]["max_prob_diff"] == 0.02


def test_a_large_difference_fails_and_names_the_worst_example() -> None:
    served = REF.copy()
    served[1] = [0.6, 0.4]
    report = judge(7, TEXTS, REF, served, TOKENS, TOKENS, tolerance(0.02, "fp32", False, None, None))
    assert report.refused
    assert "max |Δp| 0.3000 exceeds the tolerance 0.0200" in report.reason
    assert "1 clearly decided examples changed label" in report.reason
    assert report.worst is not None and report.worst["index"] == 1 and report.worst["text"] == "b"


def test_a_different_tokenization_fails_even_with_equal_probabilities() -> None:
    report = judge(7, TEXTS, REF, REF.copy(), TOKENS, [3, 4, 9, 6], tolerance(0.02, "fp32", False, None, None))
    assert report.refused and report.token_mismatches == 1 and "tokenizer" in report.reason
