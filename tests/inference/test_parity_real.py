"""Parity of the real fine-tuned MiniLM under every fast precision this CPU has (integration)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference import parity
from inference.hardware import cpu_features
from inference.selection import candidates, choose
from store.manifest import read_manifest
from store.parity_records import ParityRecords
from training.config import preset
from training.data import load_data

SUBSET = 400  # dev examples re-measured here; the manifest's record covers the whole dev split
MIN_AGREEMENT = 0.99


@pytest.mark.integration
@pytest.mark.timeout(1200)  # includes training the shared fine-tuned model (~1 min idle, far more on a busy box)
def test_every_precision_auto_would_serve_agrees_with_fp32_on_a_dev_subset(fine_tuned_model_dir: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    manifest = read_manifest(fine_tuned_model_dir)
    # This CPU's fast precisions; bf16 runs (emulated) on any CPU, so a plain CI box still tests one.
    fast = candidates("auto", "cpu", cpu_features(), cuda_bf16=False)[:-1] or ["bf16"]
    recorded = manifest["precision_parity"]
    assert set(fast) <= set(recorded), "publishing must record parity for every precision this host can serve"

    dev = load_data(preset("default")).splits["dev"]
    labels = np.asarray(dev.label_ids[:SUBSET])
    model = AutoModelForSequenceClassification.from_pretrained(fine_tuned_model_dir, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(fine_tuned_model_dir)
    found = parity.measure(model, tokenizer, dev.texts[:SUBSET], labels, manifest["temperature"], "cpu", fast)
    measured = found.precision

    records = ParityRecords(entries=recorded, origins=dict.fromkeys(recorded, "manifest"))
    served = choose("auto", [*fast, "fp32"], records, MIN_AGREEMENT).dtype
    for precision in fast:
        fresh = measured[precision]
        # The record must describe this model: a fresh look at a subset lands close to it.
        assert abs(fresh["agreement"] - recorded[precision]["agreement"]) <= 0.02, (precision, fresh, recorded)
        if precision == served:
            assert fresh["agreement"] >= MIN_AGREEMENT, (precision, fresh)
            assert fresh["accuracy_delta"] >= -0.01, (precision, fresh)
        if recorded[precision]["agreement"] < MIN_AGREEMENT:
            assert precision != served  # the guard keeps a lossy precision out
    if "bf16" in fast:
        # Native bf16 is the CPU fast path `auto` is meant to take: it must be accurate enough to be served.
        assert measured["bf16"]["agreement"] >= MIN_AGREEMENT and served == "bf16", measured
    # Packed execution of the real model reproduces padded execution in every precision measured, and the
    # publish recorded that for the precision auto serves (so auto packs it).
    assert set(found.packing) == {"fp32", *fast}
    assert found.packing["fp32"]["agreement"] == 1.0 and found.packing["fp32"]["max_prob_diff"] < 1e-4
    assert manifest["packing_parity"][served]["agreement"] >= MIN_AGREEMENT
