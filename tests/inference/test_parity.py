"""Parity measurement: each reduced precision against fp32, on copies of the model (tiny models)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from inference import parity
from tests.helpers.data import labelled_rows
from tests.helpers.models import build_tiny_bert


def test_compare_counts_agreement_accuracy_and_probability_drift() -> None:
    reference = np.array([[2.0, 0.0], [0.0, 2.0], [0.1, 0.0], [0.0, 3.0]])
    candidate = np.array([[2.0, 0.0], [0.0, 2.0], [0.0, 0.1], [0.0, 3.0]])  # flips the near-tie only
    labels = np.array([0, 1, 1, 1])
    entry = parity.compare(reference, candidate, labels, temperature=1.0)
    assert entry["agreement"] == 0.75 and entry["examples"] == 4
    assert entry["fp32_accuracy"] == 0.75 and entry["accuracy"] == 1.0 and entry["accuracy_delta"] == 0.25
    flipped = 1 / (1 + np.exp(-0.1))  # the near-tie moved from p=0.525 to 0.475 for each class
    assert entry["max_prob_diff"] == pytest.approx(2 * flipped - 1, abs=1e-6)
    hotter = parity.compare(reference, candidate, labels, temperature=2.0)
    assert hotter["max_prob_diff"] < entry["max_prob_diff"]  # calibrated, as the service answers


def test_subsample_is_bounded_and_repeatable() -> None:
    assert parity.subsample(10, limit=20).tolist() == list(range(10))
    picked = parity.subsample(1000, limit=100)
    assert len(picked) == 100 == len(set(picked.tolist())) and (picked == parity.subsample(1000, limit=100)).all()


def test_measure_runs_each_precision_on_a_copy_and_leaves_fp32_alone(
    tokenizer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    model = build_tiny_bert(["negative", "positive"], seed=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = labelled_rows(per_class=10)
    texts, labels = [r["text"] for r in rows], [int(r["label"] == "positive") for r in rows]
    with caplog.at_level(logging.WARNING, logger="inference.parity"):
        found = parity.measure(model, tokenizer, texts, labels, 1.0, "cpu", ["bf16", "int8", "fp16"])
    assert set(found.precision) == {"bf16", "int8"}  # fp16 cannot run on a CPU: logged, not recorded
    assert "fp16 cannot run on cpu" in caplog.text
    assert set(found.packing) == {"fp32", "bf16", "int8"}  # packed against padded, in every precision that ran
    for entry in [*found.precision.values(), *found.packing.values()]:
        assert set(entry) >= {"agreement", "accuracy_delta", "max_prob_diff", "examples", "device"}
        assert 0.0 <= entry["agreement"] <= 1.0 and entry["examples"] == len(texts) and entry["device"] == "cpu"
    assert found.packing["fp32"]["agreement"] == 1.0 and found.packing["fp32"]["max_prob_diff"] < 1e-4
    after = model.state_dict()
    assert all(after[k].dtype == torch.float32 and torch.equal(after[k], v) for k, v in before.items())


def test_a_model_that_cannot_be_packed_gets_no_packing_records(tokenizer: Any) -> None:
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    config = DistilBertConfig(vocab_size=30522, dim=32, n_layers=1, n_heads=2, hidden_dim=64, num_labels=2)
    model = DistilBertForSequenceClassification(config).eval()
    rows = labelled_rows(per_class=4)
    texts, labels = [r["text"] for r in rows], [int(r["label"] == "positive") for r in rows]
    found = parity.measure(model, tokenizer, texts, labels, 1.0, "cpu", ["bf16"])
    assert set(found.precision) == {"bf16"} and found.packing == {}
