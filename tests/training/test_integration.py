"""The real embedded MiniLM on the real built-in data, briefly: learns, publishes, reloads identically.

The training run is the session fixture `fine_tuned_model_dir` (tests/conftest.py: 60 steps of 32
through `fine_tune` and `publish_run`), shared with the service's real-model tests so CI trains once.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from store.servable import version_problems
from training.config import preset
from training.data import load_data
from training.evaluate import classification_report


@pytest.mark.integration
def test_real_model_fine_tunes_and_reloads_with_plain_transformers(fine_tuned_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    published = fine_tuned_model_dir
    assert version_problems(published, "sentiment", 1) == []
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["labels"] == ["negative", "positive"]
    assert manifest["metrics"]["dev"]["accuracy"] >= 0.70
    assert manifest["base_model"]["name"] == "sentence-transformers/all-MiniLM-L6-v2"

    # Plain transformers, no project code, over the same dev split: the numbers the trainer recorded
    # from its own logits must come back (NLL is sensitive to every logit, not just the argmax).
    tokenizer = AutoTokenizer.from_pretrained(published)
    model = AutoModelForSequenceClassification.from_pretrained(published).eval()
    dev = load_data(preset("default")).splits["dev"]
    chunks = []
    with torch.no_grad():
        for i in range(0, len(dev.texts), 128):
            batch = tokenizer(dev.texts[i : i + 128], truncation=True, max_length=64, padding=True, return_tensors="pt")
            chunks.append(model(**batch).logits.numpy())
    report = classification_report(np.concatenate(chunks), dev.label_ids, manifest["labels"])
    recorded = json.loads((published / "metrics.json").read_text())["splits"]["dev"]
    assert report["examples"] == recorded["examples"]
    assert report["nll"] == pytest.approx(recorded["nll"], abs=5e-4)
    # A text whose two logits tie within padding-order noise may flip; no more than one.
    assert abs(report["accuracy"] - recorded["accuracy"]) * report["examples"] <= 1
