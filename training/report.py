"""What a finished run publishes besides its weights: metrics per split, manifest fields, parity records,
the quality files (canary, reference distributions), metrics.json, the model card and the plots."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from inference.scores import softmax
from training import base_model, model_card, plots
from training.calibrate import calibration_summary
from training.config import TrainConfig
from training.data import PreparedData
from training.evaluate import classification_report, expected_calibration_error, nll, reliability_bins
from training.finetune import FineTuned

log = logging.getLogger(__name__)

HEADLINE_KEYS = ("examples", "accuracy", "macro_f1", "nll", "ece", "nll_calibrated", "ece_calibrated")
ExtraFiles = dict[str, str | bytes | Callable[[Path], None]]


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
    log.info(
        "dev accuracy %.4f, macro-F1 %.4f; temperature %.3f",
        reports["dev"]["accuracy"],
        reports["dev"]["macro_f1"],
        temperature,
    )
    return reports


def headline(reports: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Manifest `metrics`: a few numbers per split; metrics.json has the rest."""
    return {role: {k: r[k] for k in HEADLINE_KEYS} for role, r in reports.items()}


def manifest_fields(
    config: TrainConfig, data: PreparedData, tuned: FineTuned, reports: dict[str, Any], temperature: float
) -> dict[str, Any]:
    return finite(
        {
            "base_model": base_model.describe(config.base_model, base_model.resolve(config.base_model)),
            "dataset": data.info,
            "hyperparameters": config.hyperparameters(),
            "metrics": headline(reports),
            "temperature": temperature,
            "training": tuned.training,
        }
    )


def parity_records(model: Any, tokenizer: Any, data: PreparedData, temperature: float) -> dict[str, Any]:
    """The manifest's `precision_parity` (every serving precision against fp32) and `packing_parity`
    (packed against padded, per precision) on the dev split, measured on this machine before the
    version is committed (inference/parity.py)."""
    from inference import parity
    from inference.hardware import host_fingerprint

    device = str(next(model.parameters()).device)
    dev = data.splits["dev"]
    found = parity.measure(model, tokenizer, dev.texts, dev.label_ids, temperature, device)
    fingerprint = host_fingerprint(device)
    for table, against in ((found.precision, "fp32"), (found.packing, "padded")):
        for precision, entry in table.items():
            entry["host"] = fingerprint
            log.info(
                "parity %s%s vs %s on %d dev examples: agreement %.4f, accuracy delta %+.4f, max prob diff %.4f",
                precision,
                " packed" if against == "padded" else "",
                against,
                entry["examples"],
                entry["agreement"],
                entry["accuracy_delta"],
                entry["max_prob_diff"],
            )
    return finite({"precision_parity": found.precision, "packing_parity": found.packing})


def quality_records(model: Any, tokenizer: Any, data: PreparedData, temperature: float, dev_logits: np.ndarray) -> Any:
    """The canary set and the reference distributions of the dev split (training/quality.py): files for
    the version directory and the manifest's `quality` entry, covered by the checksums like the rest."""
    from training.quality import quality_files

    dev = data.splits["dev"]
    return quality_files(model, tokenizer, dev.texts, dev.label_ids, data.labels, temperature, dev_logits)


def report_files(
    config: TrainConfig,
    data: PreparedData,
    tuned: FineTuned,
    reports: dict[str, Any],
    fields: dict[str, Any],
    temperature: float,
) -> ExtraFiles:
    """metrics.json, the model card and the three figures, as files for the version directory."""
    dev_logits = tuned.logits["dev"]
    dev_labels = np.asarray(data.splits["dev"].label_ids)
    metrics = {
        "labels": data.labels,
        "temperature": temperature,
        "calibration_dev": calibration_summary(dev_logits, dev_labels, temperature),
        "splits": reports,
        "training": tuned.training,
        "log_history": tuned.log_history,
    }
    bins_before = reliability_bins(softmax(dev_logits), dev_labels)
    bins_after = reliability_bins(softmax(dev_logits, temperature), dev_labels)
    return {
        "metrics.json": json.dumps(finite(metrics), indent=2, allow_nan=False) + "\n",
        "README.md": model_card.render(config.name, fields, reports, data.labels),
        "training_curves.png": lambda p: plots.training_curves(tuned.log_history, p),
        "confusion_matrix.png": lambda p: plots.confusion_matrix(
            reports["dev"]["confusion_matrix"], data.labels, p, "Confusion matrix (dev)"
        ),
        "reliability.png": lambda p: plots.reliability_diagram(bins_before, bins_after, temperature, p),
    }


def finite(value: Any) -> Any:
    """`value` with NaN/inf replaced by None: JSON has no such numbers and strict parsers reject them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
