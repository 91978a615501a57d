"""Tiny random BERT classifiers, published through the real publish path into a real store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TINY_BASE = {"name_or_path": "tiny-random-bert"}
TINY_FILES = {"metrics.json": "{}\n", "README.md": "# tiny test model\n"}


def build_tiny_bert(labels: list[str], seed: int = 0, max_position_embeddings: int = 512) -> Any:
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


def build_spread_bert(labels: list[str], seed: int = 0, max_position_embeddings: int = 512) -> Any:
    """A tiny BERT with large random weights: its logits differ from text to text (a default-initialised
    one answers nearly the same for every input, which would hide precision, padding and packing errors)."""
    import torch

    model = build_tiny_bert(labels, seed=seed, max_position_embeddings=max_position_embeddings)
    torch.manual_seed(seed + 1)
    for module in model.modules():
        if isinstance(module, torch.nn.Linear | torch.nn.Embedding):
            module.weight.data.normal_(0.0, 0.5)
    return model


def publish_tiny(
    models_dir: Path,
    tokenizer: Any,
    name: str = "sentiment",
    labels: list[str] | None = None,
    seed: int = 0,
    temperature: float = 1.0,
    model: Any = None,
    **manifest_fields: Any,
) -> Path:
    """Publish a tiny random BERT (or `model`) as the next version of `name`; returns its directory."""
    from store.model_store import ModelStore
    from training.publish import publish_version

    published = publish_version(
        ModelStore(models_dir),
        name,
        model if model is not None else build_tiny_bert(labels or ["negative", "positive"], seed=seed),
        tokenizer,
        {"temperature": temperature, "base_model": TINY_BASE, **manifest_fields},
        extra_files=TINY_FILES,
    )
    return published.path


BROKEN_VERSION = 3  # the swap test store publishes version 3 intact, then corrupts its weights on disk


def reseal(version_dir: Path) -> None:
    """Rewrite the manifest's file table to match the directory: a manifest that lies consistently,
    so what is tested is the check behind the checksums."""
    import json

    from store.files import file_inventory
    from store.manifest import MANIFEST

    path = version_dir / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["files"] = file_inventory(version_dir, exclude=frozenset({MANIFEST}))
    path.write_text(json.dumps(manifest))
