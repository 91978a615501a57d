"""The quality files of a version (store/quality.py): written and read back, validated row by row, optional."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from store.errors import VerificationError
from store.quality import (
    CANARY_FILE,
    DEFAULT_CANARY_MARGIN,
    REFERENCE_FILE,
    bin_of,
    canary_text,
    parse_canary,
    parse_reference,
    read_canary,
    read_reference,
)
from store.servable import check_servable, version_problems
from tests.helpers.models import reseal

LABELS = ["negative", "positive"]
EXAMPLE = {
    "text": "A fine film.",
    "label": "positive",
    "tokens": 6,
    "probabilities": {"negative": 0.1, "positive": 0.9},
}


def test_canary_lines_round_trip_in_label_order() -> None:
    canary, problems = parse_canary(canary_text([EXAMPLE, {**EXAMPLE, "label": "negative"}]), LABELS)
    assert problems == []
    assert [e.probabilities for e in canary.examples] == [(0.1, 0.9), (0.1, 0.9)]
    assert canary.examples[1].label == "negative" and canary.examples[0].tokens == 6


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"label": "neutral"}, "'label' 'neutral' is not one of"),
        ({"text": "  "}, "'text' must be a non-empty string"),
        ({"tokens": 0}, "'tokens' must be a positive integer"),
        ({"probabilities": {"negative": 0.5}}, "must map exactly the labels"),
        ({"probabilities": {"negative": 0.5, "positive": 0.6}}, "sum to 1"),
        ({"probabilities": {"negative": "x", "positive": 1}}, "finite numbers"),
    ],
)
def test_bad_canary_rows_are_named_by_line(change: dict, problem: str) -> None:
    text = canary_text([EXAMPLE]) + json.dumps({**EXAMPLE, **change}) + "\n" + "not json\n"
    canary, problems = parse_canary(text, LABELS)
    assert len(canary.examples) == 1
    assert problems[0].startswith(f"{CANARY_FILE}: line 2: ") and problem in problems[0]
    assert problems[1].startswith(f"{CANARY_FILE}: line 3: not JSON")


def test_reference_low_confidence_share_interpolates() -> None:
    reference = parse_reference(
        json.dumps(
            {
                "format_version": 1,
                "examples": 10,
                "predicted_label_shares": {"negative": 0.4, "positive": 0.6},
                "confidence": {"edges": [0.5, 0.8, 1.0], "shares": [0.3, 0.7]},
                "length": {"edges": [0, 10, 512], "shares": [0.5, 0.5]},
                "low_confidence": {"thresholds": [0.5, 0.6, 0.7], "shares": [0.0, 0.1, 0.3]},
                "accuracy": 0.8,
            }
        ),
        LABELS,
    )
    assert not isinstance(reference, str)
    assert reference.predicted_label_shares == (0.4, 0.6)
    assert reference.low_confidence_share(0.65) == pytest.approx(0.2)
    assert reference.low_confidence_share(0.99) is None
    assert "increasing edges" in parse_reference(
        json.dumps({"format_version": 1, "examples": 1, "predicted_label_shares": {"negative": 0.5, "positive": 0.5},
                    "confidence": {"edges": [1.0, 0.5], "shares": [1.0]}, "length": {"edges": [0, 1], "shares": [1]}}),
        LABELS,
    )  # fmt: skip


def test_bin_rule_puts_edges_in_the_lower_bin_and_clamps_outliers() -> None:
    edges = [0.5, 0.7, 0.9, 1.0]
    assert [bin_of(v, edges) for v in (0.4, 0.5, 0.6, 0.7, 0.71, 0.9, 1.0, 1.5)] == [0, 0, 0, 0, 1, 1, 2, 2]


def test_a_version_without_quality_files_is_servable_and_has_none(publish_tiny: Callable[..., Path]) -> None:
    path = publish_tiny()
    manifest = check_servable(path).manifest
    assert "quality" not in manifest
    assert read_canary(path, manifest, LABELS) is None and read_reference(path, LABELS) is None


def test_published_quality_files_are_checksummed_and_read_back(publish_tiny: Callable[..., Path]) -> None:
    path = publish_tiny(quality=True)
    manifest = check_servable(path).manifest
    assert {CANARY_FILE, REFERENCE_FILE} <= set(manifest["files"])
    assert manifest["quality"]["canary"]["margin"] == DEFAULT_CANARY_MARGIN
    canary = read_canary(path, manifest, LABELS)
    assert canary is not None and len(canary.examples) == manifest["quality"]["canary"]["examples"] > 0
    assert {e.label for e in canary.examples} == set(LABELS)
    reference = read_reference(path, LABELS)
    assert reference is not None and reference.examples == manifest["quality"]["reference"]["examples"]
    # Removing a file is caught by the checksums; a resealed broken one by the servable rules.
    (path / CANARY_FILE).write_text((path / CANARY_FILE).read_text() + '{"text": "x"}\n')
    assert any("altered file: canary.jsonl" in p for p in version_problems(path))
    reseal(path)
    with pytest.raises(VerificationError, match=r"canary.jsonl: line \d+: 'label' None"):
        check_servable(path)


def test_a_store_refuses_to_publish_a_broken_canary(publish_tiny: Callable[..., Path], tokenizer: object) -> None:
    from store.model_store import ModelStore
    from tests.helpers.models import TINY_BASE, build_tiny_bert
    from training.publish import publish_version

    root = publish_tiny().parents[1]
    with pytest.raises(VerificationError, match=r"canary\.jsonl: line 1: not JSON"):
        publish_version(
            ModelStore(root), "sentiment", build_tiny_bert(LABELS), tokenizer, {"base_model": TINY_BASE},
            extra_files={CANARY_FILE: "{broken\n"},
        )  # fmt: skip
    assert ModelStore(root).versions("sentiment") == [1]
