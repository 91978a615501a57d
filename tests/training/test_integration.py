"""The real embedded MiniLM on the real built-in data, briefly: learns, publishes, reloads identically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from training.config import preset
from training.data import load_data
from training.store import verify_directory


@pytest.mark.integration
def test_real_model_fine_tunes_and_reloads_with_plain_transformers(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.publish import publish_run
    from training.train import fine_tune

    # 60 steps of 32 (a fifth of an epoch); one evaluation at the end keeps the checkpoint cost down.
    config = preset("default", max_steps=60, eval_steps=60, models_dir=tmp_path / "models", run_dir=tmp_path / "run")
    data = load_data(config)
    tuned = fine_tune(config, data)
    published = publish_run(config, data, tuned)
    shutil.rmtree(tmp_path / "run")  # a 270 MB checkpoint pytest would otherwise keep around
    assert verify_directory(published, "sentiment", 1) == []
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["labels"] == ["negative", "positive"]
    assert manifest["metrics"]["dev"]["accuracy"] >= 0.70
    assert manifest["base_model"]["name"] == "sentence-transformers/all-MiniLM-L6-v2"

    tokenizer = AutoTokenizer.from_pretrained(published)
    model = AutoModelForSequenceClassification.from_pretrained(published).eval()
    texts = data.splits["dev"].texts
    chunks = []
    with torch.no_grad():
        for i in range(0, len(texts), 128):
            batch = tokenizer(texts[i : i + 128], truncation=True, max_length=64, padding=True, return_tensors="pt")
            chunks.append(model(**batch).logits.numpy())
    logits = np.concatenate(chunks)
    trained = tuned.logits["dev"]
    np.testing.assert_allclose(logits, trained, atol=1e-3)
    decided = np.abs(trained[:, 1] - trained[:, 0]) > 1e-3  # padding-order noise cannot flip these
    assert (logits.argmax(1) == trained.argmax(1))[decided].all()
