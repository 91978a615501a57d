"""Every knob of a training run in one dataclass, plus the two presets.

The CLI builds one flag per field from this dataclass (see training/cli.py), so a new knob
added here is automatically overridable from the command line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUILTIN_DATA = "builtin:rotten_tomatoes"
EMBEDDED_BASE_MODEL = "embedded:all-MiniLM-L6-v2"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class ConfigError(ValueError):
    """A training configuration that cannot work; raised before any heavy work starts."""


def _knob(default: Any, help: str, **kwargs: Any) -> Any:
    return field(default=default, metadata={"help": help, **kwargs})


@dataclass(frozen=True)
class TrainConfig:
    # ---- data ----------------------------------------------------------------------------
    data: str = _knob(
        BUILTIN_DATA,
        f"'{BUILTIN_DATA}', a local .csv/.jsonl/.json/.parquet file or a glob of them, the service's feedback files, "
        "or 'hf:<dataset id>' (needs a network); repeat it (or give several) to combine sources",
    )
    # More sources after the first --data value (the CLI fills it: `--data A --data B C`); not a flag of its own.
    extra_data: tuple[str, ...] = _knob(
        (),
        "more sources combined with --data (files, globs, feedback logs); later sources win on the same text",
        cli=False,
    )
    dev_data: str | None = _knob(None, "separate dev file; without it --data is split by a hash of the text")
    test_data: str | None = _knob(None, "separate test file (optional)")
    text_column: str = _knob("text", "text column of --data (and --dev-data/--test-data)")
    label_column: str = _knob("label", "label column; strings or integers")
    label_names: tuple[str, ...] | None = _knob(None, "comma-separated names for integer labels 0,1,2,...")
    data_config: str | None = _knob(None, "config name of a hub dataset (hf:...)")
    dev_fraction: float = _knob(0.1, "share of rows hashed into the dev split")
    test_fraction: float = _knob(0.1, "share of rows hashed into the test split (0 for none)")
    # ---- model -------------------------------------------------------------------------
    base_model: str = _knob(EMBEDDED_BASE_MODEL, "the embedded MiniLM, a save_pretrained folder or a hub id")
    max_length: int = _knob(128, "truncate inputs to this many tokens (batches are padded dynamically)")
    # ---- optimisation ------------------------------------------------------------------
    epochs: float = _knob(3.0, "training epochs (ignored when --max-steps > 0)")
    max_steps: int = _knob(-1, "stop after this many optimiser steps (-1: use --epochs)")
    batch_size: int = _knob(32, "per-device training batch size")
    eval_batch_size: int = _knob(128, "per-device evaluation batch size")
    grad_accum: int = _knob(1, "gradient accumulation steps")
    learning_rate: float = _knob(5e-5, "peak learning rate of the linear schedule")
    warmup_ratio: float = _knob(0.1, "share of steps spent warming the learning rate up")
    weight_decay: float = _knob(0.01, "AdamW weight decay")
    layer_lr_decay: float = _knob(
        1.0, "layer-wise learning-rate decay: each layer trains at this times the rate of the one above (1: off)"
    )
    label_smoothing: float = _knob(0.0, "label smoothing of the training loss (0: off)")
    eval_steps: int | None = _knob(None, "evaluate (and checkpoint) every N steps instead of every epoch")
    logging_steps: int = _knob(20, "log the training loss every N steps")
    save_total_limit: int = _knob(2, "checkpoints kept in the run dir (the best one is always kept)")
    seed: int = _knob(42, "random seed (data order, head initialisation, dropout)")
    precision: str = _knob("auto", "auto (bf16/fp16 on GPU, fp32 on CPU), fp32, bf16 or fp16", choices=PRECISIONS)
    use_cpu: bool = _knob(False, "train on the CPU even when a GPU is present")
    threads: int | None = _knob(None, "torch CPU threads (default: torch's choice, 1 when the CPU is already busy)")
    dataloader_workers: int = _knob(0, "DataLoader worker processes")
    # ---- run and output ----------------------------------------------------------------
    models_dir: Path = field(default=Path("models"), metadata={"help": "model store root"})
    name: str = _knob("sentiment", "model name; published as <models-dir>/<name>/<version>")
    run_dir: Path | None = field(default=None, metadata={"help": "checkpoints and logs (default: runs/<name>)"})
    resume: bool = _knob(False, "continue from the last checkpoint in the run dir after a crash")
    keep_checkpoints: bool = _knob(False, "keep the run dir's checkpoints after a successful publish")

    def __post_init__(self) -> None:
        if not isinstance(self.extra_data, tuple):  # from JSON (a manifest's hyperparameters): a list
            object.__setattr__(self, "extra_data", tuple(self.extra_data or ()))
        problems = []
        if not 0 <= self.dev_fraction < 1 or not 0 <= self.test_fraction < 1:
            problems.append("dev/test fractions must lie in [0, 1)")
        if self.dev_data is None and (self.dev_fraction <= 0 or self.dev_fraction + self.test_fraction >= 0.9):
            problems.append("need 0 < dev_fraction and dev_fraction + test_fraction < 0.9 to hash-split --data")
        if self.epochs <= 0 and self.max_steps <= 0:
            problems.append("set --epochs > 0 or --max-steps > 0")
        for knob in ("batch_size", "eval_batch_size", "grad_accum", "max_length", "logging_steps"):
            if getattr(self, knob) < 1:
                problems.append(f"{knob} must be >= 1")
        if self.eval_steps is not None and self.eval_steps < 1:
            problems.append("eval_steps must be >= 1")
        if not 0 <= self.warmup_ratio < 1:
            problems.append("warmup_ratio must lie in [0, 1)")
        if not 0 < self.layer_lr_decay <= 1:
            problems.append("layer_lr_decay must lie in (0, 1]")
        if not 0 <= self.label_smoothing < 1:
            problems.append("label_smoothing must lie in [0, 1)")
        if self.learning_rate <= 0:
            problems.append("learning_rate must be > 0")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {PRECISIONS}")
        if problems:
            raise ConfigError("invalid training configuration: " + "; ".join(problems))

    @property
    def resolved_run_dir(self) -> Path:
        return self.run_dir if self.run_dir is not None else Path("runs") / self.name

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, Path):
                out[key] = str(value)
            elif isinstance(value, tuple):
                out[key] = list(value)
        return out

    def hyperparameters(self) -> dict[str, Any]:
        """The knobs that shape the model (what a manifest records), not where files go."""
        skip = {"models_dir", "name", "run_dir", "resume", "keep_checkpoints", "dataloader_workers", "threads"}
        return {k: v for k, v in self.to_dict().items() if k not in skip}


# `default` fits the 2-core CPU box: two passes over the ~10k built-in training snippets at a high
# learning rate for a fine-tuning run (a 6-layer, 384-wide MiniLM tolerates it), evaluated and
# checkpointed once per epoch. Measured alternatives (docs/training.md): one epoch stops at ~0.815
# dev accuracy, a third epoch overfits, batch 16 was no better. `full` is for a GPU: more epochs at a
# lower rate with the best epoch kept, longer inputs, bigger eval batches, bf16/fp16 via precision=auto.
PRESETS: dict[str, TrainConfig] = {
    "default": TrainConfig(epochs=2.0, batch_size=32, learning_rate=1e-4, warmup_ratio=0.1, max_length=64),
    "full": TrainConfig(epochs=4.0, batch_size=32, learning_rate=5e-5, warmup_ratio=0.1, eval_batch_size=256),
}


def preset(preset_name: str, /, **overrides: Any) -> TrainConfig:
    """A preset with some knobs changed (positional-only: `name` is itself a knob)."""
    if preset_name not in PRESETS:
        raise ConfigError(f"unknown preset {preset_name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[preset_name].replace(**overrides)
