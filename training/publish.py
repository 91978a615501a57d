"""Turn a finished training run into a published model version: calibrate, report, plot, publish."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from training import base_model, model_card, parity, plots
from training.config import TrainConfig
from training.data import PreparedData
from training.evaluate import (
    calibration_summary,
    classification_report,
    expected_calibration_error,
    fit_temperature,
    nll,
    reliability_bins,
    softmax,
)
from training.export import publish_model
from training.store import ModelStore

if TYPE_CHECKING:
    from training.train import FineTuned

log = logging.getLogger(__name__)

HEADLINE_KEYS = ("examples", "accuracy", "macro_f1", "nll", "ece", "nll_calibrated", "ece_calibrated")


def evaluate_splits(data: PreparedData, logits: dict[str, np.ndarray], temperature: float) -> dict[str, Any]:
    """Full report per evaluated split, with NLL/ECE after temperature scaling alongside."""
    reports: dict[str, Any] = {}
    for role, split_logits in logits.items():
        labels = np.asarray(data.splits[role].label_ids)
        report = classification_report(split_logits, labels, data.labels)
        calibrated = softmax(split_logits, temperature)
        report["nll_calibrated"] = nll(calibrated, labels)
        report["ece_calibrated"] = expected_calibration_error(calibrated, labels)
        reports[role] = report
    return reports


def headline(reports: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Manifest `metrics`: a few numbers per split; metrics.json has the rest."""
    return {role: {k: r[k] for k in HEADLINE_KEYS} for role, r in reports.items()}


def manifest_fields(
    config: TrainConfig, data: PreparedData, tuned: FineTuned, reports: dict[str, Any], temperature: float
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "base_model": base_model.describe(config.base_model, base_model.resolve(config.base_model)),
        "dataset": data.info,
        "hyperparameters": config.hyperparameters(),
        "metrics": headline(reports),
        "temperature": temperature,
        "training": tuned.training,
    }
    # `precision_parity` is measured by publish_run (training/parity.py), not estimated here.
    return fields


def finite(value: Any) -> Any:
    """`value` with NaN/inf replaced by None: JSON has no such numbers and strict parsers reject them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def publish_run(config: TrainConfig, data: PreparedData, tuned: FineTuned) -> Path:
    dev_logits = tuned.logits["dev"]
    dev_labels = np.asarray(data.splits["dev"].label_ids)
    temperature = fit_temperature(dev_logits, dev_labels)
    reports = evaluate_splits(data, tuned.logits, temperature)
    calibration = calibration_summary(dev_logits, dev_labels, temperature)
    log.info(
        "dev accuracy %.4f, macro-F1 %.4f; temperature %.3f (ECE %.4f -> %.4f)",
        reports["dev"]["accuracy"],
        reports["dev"]["macro_f1"],
        temperature,
        calibration["ece_before"],
        calibration["ece_after"],
    )
    fields = finite(manifest_fields(config, data, tuned, reports, temperature))
    # Measured before the commit point: the manifest is checksummed and immutable once published.
    fields["precision_parity"] = finite(parity.for_publish(tuned.model, tuned.tokenizer, data, temperature))
    metrics = {
        "labels": data.labels,
        "temperature": temperature,
        "calibration_dev": calibration,
        "splits": reports,
        "training": tuned.training,
        "log_history": tuned.log_history,
    }
    bins_before = reliability_bins(softmax(dev_logits), dev_labels)
    bins_after = reliability_bins(softmax(dev_logits, temperature), dev_labels)
    extra_files: dict[str, str | bytes | Callable[[Path], None]] = {
        "metrics.json": json.dumps(finite(metrics), indent=2, allow_nan=False) + "\n",
        "README.md": model_card.render(config.name, fields, reports, data.labels),
        "training_curves.png": lambda p: plots.training_curves(tuned.log_history, p),
        "confusion_matrix.png": lambda p: plots.confusion_matrix(
            reports["dev"]["confusion_matrix"], data.labels, p, "Confusion matrix (dev)"
        ),
        "reliability.png": lambda p: plots.reliability_diagram(bins_before, bins_after, temperature, p),
    }
    published = publish_model(
        ModelStore(config.models_dir), config.name, tuned.model, tuned.tokenizer, fields, extra_files
    )
    log.info("published %s version %d at %s", published.name, published.version, published.path)
    return published.path
