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


# Dev-like examples for the quality files of tiny models: mixed case (a tokenizer that stops lower-casing
# changes their ids), both labels, lengths from one word to a long sentence.
QUALITY_TEXTS = [
    ("A gripping, Beautifully shot film.", "positive"),
    ("Two hours I will never get back.", "negative"),
    ("Fine", "positive"),
    ("Dull.", "negative"),
    ("The plot meanders but the performances carry it through to a satisfying end.", "positive"),
    ("An instant classic with a score that lingers for days after the credits roll.", "positive"),
    ("Wooden acting, a Script full of holes and an ending nobody asked for.", "negative"),
    ("Brilliant!", "positive"),
    ("Tedious, Overlong and Smug.", "negative"),
    ("Not since Casablanca has a romance felt this alive on screen.", "positive"),
    ("I checked my watch every ten minutes, then started counting the ceiling tiles instead.", "negative"),
    ("A Delight from start to finish", "positive"),
    ("Boring", "negative"),
    ("Spielberg at his most Playful, with a cast that clearly had fun.", "positive"),
    ("The sequel nobody wanted, made by people who did not want to make it.", "negative"),
    ("Warm, funny and Wise.", "positive"),
    ("Painfully slow and Utterly forgettable.", "negative"),
    ("One of the best films of the Decade.", "positive"),
    ("Avoid.", "negative"),
    ("Its Heart is in the right place even when its script is not.", "positive"),
]


def quality_extra(model: Any, tokenizer: Any, temperature: float, texts: list[tuple[str, str]] | None = None) -> Any:
    """The quality files (canary + reference) a real publish would write, computed the same way."""
    from training.quality import quality_files

    rows = texts or QUALITY_TEXTS
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    label_ids = [labels.index(label) for _, label in rows]
    return quality_files(model, tokenizer, [t for t, _ in rows], label_ids, labels, temperature)


def publish_tiny(
    models_dir: Path,
    tokenizer: Any,
    name: str = "sentiment",
    labels: list[str] | None = None,
    seed: int = 0,
    temperature: float = 1.0,
    model: Any = None,
    quality: bool = False,
    **manifest_fields: Any,
) -> Path:
    """Publish a tiny random BERT (or `model`) as the next version of `name`; returns its directory.

    `quality`: with the canary set and reference distributions of a real publish (QUALITY_TEXTS as dev);
    without, the version looks like one published before those files existed."""
    from store.model_store import ModelStore
    from training.publish import publish_version

    model = model if model is not None else build_tiny_bert(labels or ["negative", "positive"], seed=seed)
    files: dict[str, Any] = dict(TINY_FILES)
    fields: dict[str, Any] = {"temperature": temperature, "base_model": TINY_BASE, **manifest_fields}
    if quality:
        extra = quality_extra(model, tokenizer, temperature)
        files |= extra.files
        fields["quality"] = extra.manifest
    published = publish_version(ModelStore(models_dir), name, model, tokenizer, fields, extra_files=files)
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


def alter_weights(version_dir: Path, tensor: str = "classifier.weight", scale: float = 1.25) -> None:
    """Scale one weight tensor and reseal: every checksum passes, the model's answers differ."""
    from safetensors.torch import load_file, save_file

    path = version_dir / "model.safetensors"
    tensors = load_file(path)
    tensors[tensor] = tensors[tensor] * scale
    save_file(tensors, path, metadata={"format": "pt"})
    reseal(version_dir)


def stop_lowercasing(version_dir: Path) -> None:
    """Turn off the tokenizer's lower-casing (as another tokenizer build might) and reseal.

    Both files: transformers rebuilds the normalizer from tokenizer_config.json's do_lower_case, so the
    flag in tokenizer.json alone does not change what is served (and the canary rightly passes then)."""
    import json

    path = version_dir / "tokenizer.json"
    data = json.loads(path.read_text())
    assert data["normalizer"]["lowercase"] is True, data["normalizer"]
    data["normalizer"]["lowercase"] = False
    path.write_text(json.dumps(data))
    config_path = version_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["do_lower_case"] = False
    config_path.write_text(json.dumps(config))
    reseal(version_dir)
