"""Unit tests of the training step's decisions (the end-to-end runs are in test_train_cli.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.config import preset
from training.data import LabelledSplit
from training.train import _unsort, cpu_threads, tokenize, training_arguments


@pytest.mark.parametrize(
    ("requested", "load", "expected"),
    [
        (None, 0.3, 2),  # idle: torch's default
        (None, 1.9, 2),
        (None, 2.0, 1),  # every core already busy: one thread
        (None, 9.0, 1),
        (2, 9.0, 2),  # an explicit --threads always wins
        (3, 0.0, 3),
    ],
)
def test_cpu_threads(requested: int | None, load: float, expected: int) -> None:
    assert cpu_threads(requested, default=2, cores=2, load=load) == expected


def test_single_thread_default_is_kept_on_a_busy_machine() -> None:
    assert cpu_threads(None, default=1, cores=1, load=5.0) == 1


def test_evaluation_schedule(tmp_path: Path) -> None:
    by_epoch = training_arguments(preset("default"), tmp_path, "fp32")
    assert by_epoch.eval_strategy == "epoch" == by_epoch.save_strategy
    assert by_epoch.load_best_model_at_end and by_epoch.metric_for_best_model == "macro_f1"
    by_steps = training_arguments(preset("default", max_steps=90), tmp_path, "fp32")
    assert (by_steps.eval_strategy, by_steps.eval_steps, by_steps.save_steps) == ("steps", 23, 23)
    explicit = training_arguments(preset("default", eval_steps=50), tmp_path, "fp32")
    assert (explicit.eval_strategy, explicit.eval_steps) == ("steps", 50)


def test_eval_datasets_are_length_sorted_and_predictions_map_back(tokenizer) -> None:
    texts = ["a much longer sentence than the others here", "short", "a medium one", "x y"]
    dataset, order = tokenize(tokenizer, LabelledSplit(texts, [0, 1, 0, 1]), max_length=32)
    lengths = [len(ids) for ids in dataset["input_ids"]]
    assert lengths == sorted(lengths)
    assert dataset["labels"] == [[0, 1, 0, 1][i] for i in order]
    # A fake "prediction" per sorted row (its length) must come back in the original text order.
    restored = _unsort(np.array(lengths), order)
    assert restored.tolist() == [len(tokenizer(t)["input_ids"]) for t in texts]
