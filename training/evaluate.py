"""Classification metrics and calibration error, on raw logits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from inference.scores import softmax

ECE_BINS = 15


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, 1e-12, None)).mean())


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per confidence bin (equal width on [0, 1]): count, mean confidence and accuracy of the top class."""
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Right-closed bins so that a confidence of exactly 1.0 lands in the last bin.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        mask = index == b
        count = int(mask.sum())
        bins.append(
            {
                "lower": float(edges[b]),
                "upper": float(edges[b + 1]),
                "count": count,
                "confidence": float(confidence[mask].mean()) if count else 0.0,
                "accuracy": float(correct[mask].mean()) if count else 0.0,
            }
        )
    return bins


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> float:
    total = len(labels)
    return float(
        sum(b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in reliability_bins(probs, labels, n_bins))
    )


def classification_report(
    logits: np.ndarray, labels: Sequence[int], label_names: Sequence[str], temperature: float = 1.0
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class P/R/F1, confusion matrix (rows = true), NLL and ECE."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y = np.asarray(labels, dtype=np.int64)
    probs = softmax(logits, temperature)
    pred = probs.argmax(axis=1)
    ids = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, labels=ids, zero_division=0)
    return {
        "examples": len(y),
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(np.mean(f1)),
        "nll": nll(probs, y),
        "ece": expected_calibration_error(probs, y),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(label_names)
        },
        "confusion_matrix": confusion_matrix(y, pred, labels=ids).tolist(),
    }
