"""Fine-tuning with the Hugging Face Trainer: arguments, layer-wise learning rates, resume, ordered evaluation.

Distributed runs (`torchrun`, `accelerate launch`) work unchanged: Trainer sets them up; the caller
(training/pipeline.py) publishes from rank 0 only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from sklearn.metrics import f1_score
from torch.utils.data import SequentialSampler
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from training import base_model
from training.config import ConfigError, TrainConfig
from training.data import LabelledSplit, PreparedData

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
# Changing any of these makes an old checkpoint meaningless for the new run.
_RESUME_IDENTITY = (
    "base_model",
    "seed",
    "batch_size",
    "grad_accum",
    "learning_rate",
    "layer_lr_decay",
    "max_length",
)


@dataclass
class FineTuned:
    model: Any
    tokenizer: Any
    log_history: list[dict[str, Any]]
    logits: dict[str, np.ndarray]  # per evaluated split, from the best checkpoint
    training: dict[str, Any]  # steps, wall clock, device, precision, ...
    is_main: bool


def tokenize(tokenizer: Any, split: LabelledSplit, max_length: int) -> tuple[Any, np.ndarray]:
    """The encoded split sorted by length, and the order that maps it back to the split's order.

    Evaluation batches are sequential, so sorting them by length keeps padding (and CPU time) minimal;
    training batches are regrouped by length anyway.
    """
    encoded = tokenizer(split.texts, truncation=True, max_length=max_length)
    order = np.argsort([len(ids) for ids in encoded["input_ids"]], kind="stable")
    dataset = datasets.Dataset.from_dict({**encoded, "labels": split.label_ids}).select(order)
    return dataset, order


def _unsort(rows: np.ndarray, order: np.ndarray) -> np.ndarray:
    out = np.empty_like(rows)
    out[order] = rows
    return out


def _cuda(config: TrainConfig) -> bool:
    return torch.cuda.is_available() and not config.use_cpu


def cpu_threads(requested: int | None, default: int, cores: int, load: float | None = None) -> int:
    """Torch threads for CPU training: the requested number, else torch's default unless the CPU is busy.

    When every core is already taken (1-minute load >= cores), intra-op threads wait for each other
    at every operator while the scheduler runs other processes; measured here with 2 threads on 2
    busy cores: ~10 s per step against ~2.5 s with one thread. One thread then trains faster.
    """
    if requested:
        return requested
    load = os.getloadavg()[0] if load is None else load
    if default > 1 and load >= cores:
        log.warning(
            "the CPU is busy (load %.1f on %d cores): training with 1 thread (--threads overrides)", load, cores
        )
        return 1
    return default


def _precision(config: TrainConfig) -> str:
    if config.precision == "auto":
        if not _cuda(config):
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if config.precision == "fp16" and not _cuda(config):
        raise ConfigError("precision fp16 needs a GPU; use bf16 or fp32 on the CPU")
    return config.precision


def training_arguments(config: TrainConfig, run_dir: Path, precision: str) -> TrainingArguments:
    # Evaluate every N steps when training by step count (or when asked); otherwise per epoch.
    by_steps = config.max_steps > 0 or config.eval_steps is not None
    if by_steps and config.eval_steps is None:
        eval_steps: int | None = max(1, math.ceil(config.max_steps / 4))
    else:
        eval_steps = config.eval_steps
    strategy = "steps" if by_steps else "epoch"
    return TrainingArguments(
        output_dir=str(run_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        weight_decay=config.weight_decay,
        label_smoothing_factor=config.label_smoothing,
        train_sampling_strategy="group_by_length",
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        # On a host without CUDA, only use_cpu makes Trainer set up a distributed (gloo) run under torchrun.
        use_cpu=not _cuda(config),
        eval_strategy=strategy,
        save_strategy=strategy,
        eval_steps=eval_steps,
        save_steps=eval_steps,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model="macro_f1",
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        logging_first_step=True,
        seed=config.seed,
        dataloader_num_workers=config.dataloader_workers,
        dataloader_pin_memory=_cuda(config),  # pinning without a GPU only produces a warning
        report_to="none",
        disable_tqdm=False,
    )


def _depth_from_top(name: str, layers: int) -> int:
    """0 for the head (pooler, classifier), k for the k-th encoder layer from the top, layers+1 for embeddings."""
    match = re.search(r"\.layer\.(\d+)\.", name)
    if match:
        return layers - int(match.group(1))
    return layers + 1 if ".embeddings." in f".{name}" else 0


def layerwise_param_groups(
    model: Any, learning_rate: float, decay: float, weight_decay: float, decay_names: set[str] | list[str]
) -> list[dict[str, Any]]:
    """AdamW parameter groups whose learning rate shrinks by `decay` per layer below the head.

    The lower layers hold general language knowledge that a few thousand snippets should nudge,
    not overwrite; the new head and the top layers, which must learn to pool into [CLS] (this base
    was trained for mean pooling), move fastest.
    """
    layers = model.config.num_hidden_layers
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        depth, decays = _depth_from_top(name, layers), name in decay_names
        group = groups.setdefault(
            (depth, decays),
            {"params": [], "lr": learning_rate * decay**depth, "weight_decay": weight_decay if decays else 0.0},
        )
        group["params"].append(param)
    return list(groups.values())


class OrderedEvalTrainer(Trainer):
    """A Trainer whose evaluation keeps dataset order, with optional layer-wise learning rates.

    transformers 5 applies train_sampling_strategy="group_by_length" to evaluation too, with a random
    permutation, which scrambles the row order of predict() output. Our eval splits are already sorted
    by length (see tokenize), so sequential order costs no extra padding.
    """

    layer_lr_decay: float = 1.0

    def create_optimizer(self, model: Any = None) -> Any:
        if self.optimizer is None and self.layer_lr_decay < 1.0:
            target = self.model if model is None else model
            optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, target)
            groups = layerwise_param_groups(
                target,
                self.args.learning_rate,
                self.layer_lr_decay,
                self.args.weight_decay,
                set(self.get_decay_parameter_names(target)),
            )
            self.optimizer = optimizer_cls(groups, **kwargs)  # each group's lr overrides kwargs["lr"]
        return super().create_optimizer(model)

    def _get_eval_sampler(self, eval_dataset: Any) -> Any:
        if eval_dataset is None:
            return None
        # Distributed: None lets accelerate shard batches in order; gather_for_metrics restores it.
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None


def _trainer_metrics(prediction: Any) -> dict[str, float]:
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    pred = np.asarray(logits).argmax(axis=1)
    labels = np.asarray(prediction.label_ids)
    return {"accuracy": float((pred == labels).mean()), "macro_f1": float(f1_score(labels, pred, average="macro"))}


def _last_checkpoint(run_dir: Path) -> str | None:
    """The newest complete checkpoint.

    Trainer writes a checkpoint in place and trainer_state.json last, so a checkpoint without that
    file was cut off mid-save by the crash we are recovering from and must not be resumed.
    """
    complete = [
        path
        for path in run_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*")
        if path.name.rsplit("-", 1)[-1].isdigit() and (path / TRAINER_STATE_NAME).is_file()
    ]
    if not complete:
        return None
    return str(max(complete, key=lambda path: int(path.name.rsplit("-", 1)[-1])))


def _checkpoint_to_resume(run_dir: Path, identity: dict[str, Any]) -> str | None:
    """The checkpoint --resume continues from, after making sure it belongs to this run (read-only)."""
    last = _last_checkpoint(run_dir)
    if last is None:
        log.warning("--resume: no complete checkpoint in %s, starting from scratch", run_dir)
        return None
    run_file = run_dir / RUN_FILE
    previous = json.loads(run_file.read_text()) if run_file.is_file() else {}
    changed = sorted(k for k in identity if previous.get(k) != identity[k])
    if changed:
        raise ConfigError(
            f"--resume: the checkpoints in {run_dir} come from a run with different {', '.join(changed)}; "
            "rerun without --resume to start over"
        )
    log.info("resuming from %s", last)
    return last


def _tidy_run_dir(run_dir: Path, identity: dict[str, Any], keep: str | None) -> None:
    """Drop checkpoints that are not to be resumed: an earlier run's, or ones cut off mid-save."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for path in run_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        if keep is None or not (path / TRAINER_STATE_NAME).is_file():
            log.info("removing checkpoint %s", path)
            shutil.rmtree(path)
    (run_dir / RUN_FILE).write_text(json.dumps(identity, indent=2) + "\n")


def fine_tune(config: TrainConfig, data: PreparedData) -> FineTuned:
    if not _cuda(config):
        torch.set_num_threads(cpu_threads(config.threads, torch.get_num_threads(), os.cpu_count() or 1))
    precision = _precision(config)
    run_dir = config.resolved_run_dir
    args = training_arguments(config, run_dir, precision)
    set_seed(config.seed)  # before the model: the new classification head is initialised randomly
    source = base_model.resolve(config.base_model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(
        source,
        id2label=dict(enumerate(data.labels)),  # num_labels follows from id2label
        label2id={label: i for i, label in enumerate(data.labels)},
        # A base that is itself a classifier with another number of classes gets a fresh head.
        ignore_mismatched_sizes=True,
    )
    encoded = {role: tokenize(tokenizer, split, config.max_length) for role, split in data.splits.items()}
    trainer = OrderedEvalTrainer(
        model=model,
        args=args,
        data_collator=DataCollatorWithPadding(tokenizer),
        train_dataset=encoded["train"][0],
        eval_dataset=encoded["dev"][0],
        processing_class=tokenizer,
        compute_metrics=_trainer_metrics,
    )
    trainer.layer_lr_decay = config.layer_lr_decay
    identity = {k: v for k, v in config.hyperparameters().items() if k in _RESUME_IDENTITY}
    identity.update(data_fingerprint=data.info.get("fingerprint"), labels=data.labels)
    # Every rank decides the same way (read-only); only rank 0 touches the run dir.
    checkpoint = _checkpoint_to_resume(run_dir, identity) if config.resume else None
    if trainer.is_world_process_zero():
        _tidy_run_dir(run_dir, identity, keep=checkpoint)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    train_seconds = time.perf_counter() - started
    # Logits of the best checkpoint (load_best_model_at_end has restored it) on every eval split.
    logits = {
        role: _unsort(np.asarray(trainer.predict(dataset).predictions), order)
        for role, (dataset, order) in encoded.items()
        if role != "train"
    }
    training = {
        "global_step": result.global_step,
        "train_seconds": round(train_seconds, 1),
        "train_loss": result.training_loss,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_metric": trainer.state.best_metric,
        "resumed_from": checkpoint,
        "precision": precision,
        "device": str(args.device),
        "world_size": args.world_size,
        "torch_threads": torch.get_num_threads(),
    }
    return FineTuned(
        model=trainer.model,
        tokenizer=tokenizer,
        log_history=list(trainer.state.log_history),
        logits=logits,
        training=training,
        is_main=trainer.is_world_process_zero(),
    )
