"""The quality files built at publish (training/quality.py): canary selection and reference distributions."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest

from app.quality.drift import bin_counts
from store.quality import parse_canary, parse_reference
from tests.helpers.models import QUALITY_TEXTS, build_spread_bert
from training.quality import equal_mass_bins, fp32_probabilities, quality_files, reference_distributions, select_canary

LABELS = ["negative", "positive"]


def test_the_canary_covers_every_label_and_the_range_of_lengths() -> None:
    labels = [i % 2 for i in range(1000)]
    lengths = [5 + (i * 37) % 90 for i in range(1000)]
    picked = select_canary(labels, lengths, 2, size=128)
    assert len(picked) == 128 == len(set(picked))
    assert sum(labels[i] for i in picked) == 64
    for label in (0, 1):
        mine = [lengths[i] for i in range(1000) if labels[i] == label]
        chosen = [lengths[i] for i in picked if labels[i] == label]
        assert min(chosen) == min(mine) and max(chosen) == max(mine)
    assert select_canary([0, 0, 1], [1, 2, 3], 2, size=128) == [0, 1, 2]  # a small dev split: all of it


def test_equal_mass_bins_follow_the_same_rule_as_the_service() -> None:
    values = np.random.default_rng(0).uniform(0.5, 1.0, 1000)
    bins = equal_mass_bins(values, 0.5, 1.0)
    assert len(bins["edges"]) == 11 and bins["edges"][0] == 0.5 and bins["edges"][-1] == 1.0
    assert sum(bins["shares"]) == pytest.approx(1.0) and max(bins["shares"]) < 0.11
    counts = bin_counts(values, bins["edges"])
    assert (counts / counts.sum()).round(6).tolist() == pytest.approx(bins["shares"], abs=1e-6)


def test_bins_of_values_piled_on_one_edge_still_increase() -> None:
    bins = equal_mass_bins(np.full(50, 0.5000001), 0.5, 1.0)
    assert bins == {"edges": [0.5, 1.0], "shares": [1.0]}
    edges = equal_mass_bins(np.array([0.9999999] * 9 + [0.7]), 0.5, 1.0)["edges"]
    assert edges[-1] == 1.0 and all(b > a for a, b in itertools.pairwise(edges))


def test_reference_distributions_of_the_dev_split() -> None:
    logits = np.array([[2.0, 0.0], [0.0, 3.0], [0.1, 0.0], [0.0, 1.0]])
    ref = reference_distributions(logits, [0, 1, 1, 1], LABELS, 1.0, [3, 10, 20, 40], 512)
    assert ref["predicted_label_shares"] == {"negative": 0.5, "positive": 0.5}
    assert ref["accuracy"] == 0.75
    thresholds = ref["low_confidence"]["thresholds"]
    assert ref["low_confidence"]["shares"][thresholds.index(0.6)] == 0.25  # softmax(0.1, 0) ~ 0.525
    assert not isinstance(parse_reference(json.dumps({"format_version": 1, **ref}), LABELS), str)


def test_quality_files_reproduce_the_serving_path(tokenizer: Any) -> None:
    model = build_spread_bert(LABELS, seed=5)
    built = quality_files(
        model, tokenizer, [t for t, _ in QUALITY_TEXTS], [LABELS.index(y) for _, y in QUALITY_TEXTS], LABELS, 1.4
    )
    canary, problems = parse_canary(built.files["canary.jsonl"], LABELS)
    assert problems == [] and len(canary.examples) == len(QUALITY_TEXTS)
    probs, tokens = fp32_probabilities(model, tokenizer, [e.text for e in canary.examples], 1.4)
    assert np.allclose([e.probabilities for e in canary.examples], probs, atol=1e-7)
    assert [e.tokens for e in canary.examples] == tokens
    assert built.manifest["canary"]["examples"] == len(QUALITY_TEXTS)
    assert built.manifest["reference"] == {"file": "reference.json", "split": "dev", "examples": len(QUALITY_TEXTS)}
