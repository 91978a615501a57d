"""Unit tests of the training step's decisions (the end-to-end runs are in test_train_cli.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers.models import build_tiny_bert
from training.config import preset
from training.data import LabelledSplit
from training.finetune import _unsort, cpu_threads, layerwise_param_groups, tokenize, training_arguments


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


def test_layerwise_learning_rates_shrink_from_the_head_down() -> None:
    model = build_tiny_bert(["negative", "positive"])  # 2 encoder layers
    decay_names = {n for n, _ in model.named_parameters() if not n.endswith("bias") and "LayerNorm" not in n}
    groups = layerwise_param_groups(model, 1e-3, 0.5, 0.01, decay_names)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    wd_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    params = dict(model.named_parameters())
    assert len(lr_of) == len(params)  # every trainable parameter exactly once
    assert lr_of[id(params["classifier.weight"])] == 1e-3
    assert lr_of[id(params["bert.pooler.dense.weight"])] == 1e-3
    assert lr_of[id(params["bert.encoder.layer.1.attention.self.query.weight"])] == 5e-4
    assert lr_of[id(params["bert.encoder.layer.0.output.dense.weight"])] == 2.5e-4
    assert lr_of[id(params["bert.embeddings.word_embeddings.weight"])] == 1.25e-4
    assert wd_of[id(params["classifier.weight"])] == 0.01 and wd_of[id(params["classifier.bias"])] == 0.0


def test_layerwise_decay_of_one_is_a_single_rate() -> None:
    model = build_tiny_bert(["a", "b", "c"])
    groups = layerwise_param_groups(model, 2e-5, 1.0, 0.0, set())
    assert {g["lr"] for g in groups} == {2e-5}


def test_trainer_builds_its_optimizer_from_the_layerwise_groups(tmp_path: Path) -> None:
    from transformers import TrainingArguments

    from training.finetune import OrderedEvalTrainer

    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-3, use_cpu=True, report_to="none")
    trainer = OrderedEvalTrainer(model=build_tiny_bert(["negative", "positive"]), args=args)
    trainer.layer_lr_decay = 0.5
    optimizer = trainer.create_optimizer()
    assert sorted({g["lr"] for g in optimizer.param_groups}) == [1.25e-4, 2.5e-4, 5e-4, 1e-3]
