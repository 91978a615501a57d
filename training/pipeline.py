"""One path from data to a published model: load data -> fine-tune -> calibrate -> evaluate -> parity -> quality
files (canary, reference) -> publish.

Runs unchanged under `torchrun`/`accelerate launch`: Trainer handles the distributed setup, every
rank trains and evaluates its shard, and only the world's rank 0 calibrates and publishes.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from store.model_store import ModelStore
from training.calibrate import fit_temperature
from training.config import TrainConfig
from training.data import load_data
from training.finetune import fine_tune
from training.publish import publish_version
from training.report import evaluate_splits, manifest_fields, parity_records, quality_records, report_files

log = logging.getLogger(__name__)


def run(config: TrainConfig) -> Path | None:
    """Train and publish; returns the published version directory (None on ranks other than 0)."""
    started = time.perf_counter()
    store = ModelStore(config.models_dir)
    store.name_dir(config.name)  # a bad --name fails now, not after training
    data = load_data(config)  # raises DataError before anything heavy happens
    log.info("data: %s", json.dumps(data.info["split_sizes"]))

    tuned = fine_tune(config, data)
    if not tuned.is_main:
        return None
    tuned.training["elapsed_before_publish_s"] = round(time.perf_counter() - started, 1)

    temperature = fit_temperature(tuned.logits["dev"], np.asarray(data.splits["dev"].label_ids))
    reports = evaluate_splits(data, tuned.logits, temperature)
    fields = manifest_fields(config, data, tuned, reports, temperature)
    # Measured before the commit point: the manifest is checksummed and immutable once published.
    fields.update(parity_records(tuned.model, tuned.tokenizer, data, temperature))
    quality = quality_records(tuned.model, tuned.tokenizer, data, temperature, tuned.logits["dev"])
    fields["quality"] = quality.manifest
    files = {**report_files(config, data, tuned, reports, fields, temperature), **quality.files}
    published = publish_version(store, config.name, tuned.model, tuned.tokenizer, fields, files)
    log.info("published %s version %d at %s", published.name, published.version, published.path)

    if not config.keep_checkpoints:
        for checkpoint in config.resolved_run_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)
    return published.path
