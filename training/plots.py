"""PNG figures for a published model: training curves, confusion matrix, reliability diagram."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on training boxes or in containers

import matplotlib.pyplot as plt
import numpy as np


def training_curves(log_history: Sequence[dict[str, Any]], path: Path) -> None:
    """Training loss per logging step; dev loss, accuracy and macro-F1 per evaluation."""
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    evals = [e for e in log_history if "eval_loss" in e]
    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(10, 4))
    if train:
        ax_loss.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        steps = [e["step"] for e in evals]
        ax_loss.plot(steps, [e["eval_loss"] for e in evals], "o-", label="dev loss")
        for key, label in (("eval_accuracy", "dev accuracy"), ("eval_macro_f1", "dev macro-F1")):
            if all(key in e for e in evals):
                ax_score.plot(steps, [e[key] for e in evals], "o-", label=label)
    ax_loss.set(xlabel="step", ylabel="cross-entropy", title="Loss")
    ax_score.set(xlabel="step", ylabel="score", title="Dev metrics")
    for ax in (ax_loss, ax_score):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str) -> None:
    data = np.asarray(matrix)
    size = max(4.0, 1.2 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(data, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    threshold = data.max() / 2 if data.size else 0
    for (i, j), value in np.ndenumerate(data):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if value > threshold else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def reliability_diagram(
    before: Sequence[dict[str, float]], after: Sequence[dict[str, float]], temperature: float, path: Path
) -> None:
    """Accuracy against confidence per bin, before and after temperature scaling."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    for bins, style, label in ((before, "o-", "uncalibrated"), (after, "s-", f"temperature {temperature:.2f}")):
        used = [b for b in bins if b["count"]]
        ax.plot([b["confidence"] for b in used], [b["accuracy"] for b in used], style, label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title="Reliability (dev)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
