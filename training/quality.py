"""What a version needs to be judged in production, built at publish: the canary set and the reference
distributions (formats: store/quality.py, docs/model-format.md).

- Canary: up to CANARY_SIZE dev examples, the same number per label where the split allows, spread over
  the range of token lengths (evenly spaced in each label's length order), each with the fp32
  temperature-calibrated probabilities computed through the service's own tokenizer, padding and
  forward path (inference/), so the service can later check it reproduces them.
- Reference: on the whole dev split, the shares of predicted labels, equal-mass bins (deciles) of the
  confidence (top probability) and of the input length in tokens, the share of answers below several
  confidence thresholds, and the dev accuracy. Drift is measured against these (app/quality/drift.py).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from inference.scores import softmax
from store.quality import CANARY_FILE, DEFAULT_CANARY_MARGIN, REFERENCE_FILE, bin_of, canary_text, reference_text

log = logging.getLogger(__name__)

CANARY_SIZE = 128
DECILES = 10
LOW_CONFIDENCE_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.5 .. 0.95


@dataclass
class QualityFiles:
    files: dict[str, str]  # file name -> content, for the version directory
    manifest: dict[str, Any]  # the manifest's `quality` entry


def select_canary(
    label_ids: Sequence[int], lengths: Sequence[int], n_labels: int, size: int = CANARY_SIZE
) -> list[int]:
    """Indices of the canary examples: per label, evenly spaced over that label's examples sorted by length."""
    per_label = max(1, size // n_labels)
    chosen: list[int] = []
    for label in range(n_labels):
        members = [i for i, y in enumerate(label_ids) if y == label]
        members.sort(key=lambda i: (lengths[i], i))
        if len(members) <= per_label:
            chosen += members
            continue
        picks = np.unique(np.linspace(0, len(members) - 1, per_label).round().astype(int))
        chosen += [members[p] for p in picks]
    return sorted(chosen)


def fp32_probabilities(
    model: Any, tokenizer: Any, texts: Sequence[str], temperature: float
) -> tuple[np.ndarray, list[int]]:
    """Temperature-calibrated fp32 probabilities and token counts through the serving path (padded batches)."""
    from inference.padding import pad_multiple
    from inference.parity import length_sorted_batches, run_batches
    from inference.precision import prepare_forward
    from inference.tokens import encode, position_limit, resolve_max_length, serving_tokenizer

    device = str(next(model.parameters()).device)
    positions = position_limit(model.config)
    max_length = resolve_max_length(None, tokenizer.model_max_length, positions)
    tokens = encode(serving_tokenizer(tokenizer, max_length), list(texts))
    forward = prepare_forward(copy.deepcopy(model), device, "fp32", packed=False)  # it takes ownership of a copy
    pad_id = int(tokenizer.pad_token_id or 0)
    batches = length_sorted_batches(tokens.ids, pad_id, positions, multiple=pad_multiple(device))  # type: ignore[arg-type]
    logits = run_batches(forward, batches, len(texts), device)
    return softmax(logits, temperature), tokens.lengths


def token_lengths(tokenizer: Any, texts: Sequence[str], model: Any) -> tuple[list[int], list[bool]]:
    from inference.tokens import encode, position_limit, resolve_max_length, serving_tokenizer

    max_length = resolve_max_length(None, tokenizer.model_max_length, position_limit(model.config))
    encoded = encode(serving_tokenizer(tokenizer, max_length), list(texts))
    return encoded.lengths, encoded.truncated


def equal_mass_bins(values: np.ndarray, lower: float, upper: float, bins: int = DECILES) -> dict[str, list[float]]:
    """Bins at the quantiles of `values` (duplicates merged), their shares by the store's Bins rule."""
    # Rounded before deduplication, so that the stored (rounded) edges still increase strictly.
    cuts = sorted({round(float(c), 6) for c in np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])})
    edges = [round(float(lower), 6), *(c for c in cuts if lower < c < upper), round(float(upper), 6)]
    counts = np.bincount([bin_of(float(v), edges) for v in values], minlength=len(edges) - 1)
    return {"edges": edges, "shares": _shares(counts)}


def _shares(counts: np.ndarray) -> list[float]:
    shares = counts / max(1, counts.sum())
    rounded = [round(float(s), 6) for s in shares]
    rounded[int(np.argmax(rounded))] += round(1.0 - sum(rounded), 6)  # sum exactly 1 after rounding
    return rounded


def reference_distributions(
    dev_logits: np.ndarray,
    label_ids: Sequence[int],
    labels: list[str],
    temperature: float,
    lengths: Sequence[int],
    length_limit: int,
) -> dict[str, Any]:
    probs = softmax(dev_logits, temperature)
    confidence = probs.max(axis=1)
    predicted = probs.argmax(axis=1)
    shares = _shares(np.bincount(predicted, minlength=len(labels)))
    return {
        "split": "dev",
        "examples": len(label_ids),
        "labels": labels,
        "temperature": temperature,
        "predicted_label_shares": dict(zip(labels, shares, strict=True)),
        "confidence": equal_mass_bins(confidence, 1.0 / len(labels), 1.0),
        "length": equal_mass_bins(np.asarray(lengths, dtype=np.float64), 0.0, float(max(length_limit, *lengths))),
        "low_confidence": {
            "thresholds": list(LOW_CONFIDENCE_THRESHOLDS),
            "shares": [round(float((confidence < t).mean()), 6) for t in LOW_CONFIDENCE_THRESHOLDS],
        },
        "accuracy": round(float((predicted == np.asarray(label_ids)).mean()), 6),
    }


def quality_files(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    label_ids: Sequence[int],
    labels: list[str],
    temperature: float,
    dev_logits: np.ndarray | None = None,
    size: int = CANARY_SIZE,
) -> QualityFiles:
    """canary.jsonl and reference.json for a version, from its dev split (`dev_logits`: the trainer's,
    computed through the serving path when not given)."""
    from inference.hardware import host_fingerprint
    from inference.tokens import position_limit

    lengths, truncated = token_lengths(tokenizer, texts, model)
    # Truncated texts would measure the truncation, not the model: leave them out of the canary.
    eligible = [i for i in range(len(texts)) if not truncated[i]]
    picked = [
        eligible[k]
        for k in select_canary([label_ids[i] for i in eligible], [lengths[i] for i in eligible], len(labels), size)
    ]
    canary_texts = [texts[i] for i in picked]
    probs, tokens = fp32_probabilities(model, tokenizer, canary_texts, temperature)
    examples = [
        {
            "text": text,
            "label": labels[label_ids[i]],
            "tokens": n,
            "probabilities": {label: round(float(p), 8) for label, p in zip(labels, row, strict=True)},
        }
        for i, text, n, row in zip(picked, canary_texts, tokens, probs, strict=True)
    ]
    if dev_logits is None:
        full, _ = fp32_probabilities(model, tokenizer, texts, 1.0)
        dev_logits = np.log(np.clip(full, 1e-12, None))  # log-probabilities: softmax gives them back
    limit = position_limit(model.config)
    reference = reference_distributions(dev_logits, label_ids, labels, temperature, lengths, limit)
    device = str(next(model.parameters()).device)
    log.info(
        "canary: %d dev examples (%s), lengths %d-%d tokens; reference on %d dev examples",
        len(examples),
        ", ".join(f"{label} {sum(e['label'] == label for e in examples)}" for label in labels),
        min(tokens, default=0),
        max(tokens, default=0),
        len(label_ids),
    )
    manifest = {
        "canary": {
            "file": CANARY_FILE,
            "examples": len(examples),
            "margin": DEFAULT_CANARY_MARGIN,
            "reference": "fp32, padded, temperature-calibrated, through the serving tokenizer and forward path",
            "host": host_fingerprint(device),
        },
        "reference": {"file": REFERENCE_FILE, "split": "dev", "examples": len(label_ids)},
    }
    return QualityFiles({CANARY_FILE: canary_text(examples), REFERENCE_FILE: reference_text(reference)}, manifest)
