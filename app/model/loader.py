"""Find, verify and load a published model version, refusing anything damaged.

Two steps so the CLI can refuse a bad model before it opens a port: `locate` checks the store and
every checksum (cheap), `load` builds the tokenizer and the model from safetensors only.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.config import Dtype, Settings, padded_length
from training.store import InvalidReference, ModelNotFound, ModelStore, StoreError, read_manifest, verify_directory

log = logging.getLogger("app.model")

_PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".ckpt"}
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")


class ModelLoadError(Exception):
    """The configured model cannot be served; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class ModelSource:
    """A version directory that matched its manifest at start-up."""

    name: str
    version: int
    path: Path
    manifest: dict[str, Any]
    labels: list[str]
    temperature: float


@dataclass
class LoadedModel:
    source: ModelSource
    tokenizer: Any  # tokenizers.Tokenizer (the fast backend), truncating at max_length, no padding
    pad_id: int
    max_length: int
    position_limit: int
    device: str
    dtype: Dtype
    forward: Any  # (input_ids, attention_mask) -> float32 numpy logits; see app/model/precision.py
    precision: Any = None  # app.model.selection.PrecisionChoice: why `dtype` (None when built by hand)


def _train_hint(settings: Settings) -> str:
    return f"sentiment-train --models-dir {settings.models_dir} --name {settings.name}"


def locate(settings: Settings) -> ModelSource:
    """Resolve name + version in the store and verify the directory against its manifest."""
    root = Path(settings.models_dir)
    if not root.is_dir():
        raise ModelLoadError(
            f"models directory {root} does not exist. Train and publish a model first: `{_train_hint(settings)}`, "
            "or point SENTIMENT_MODELS_DIR / --models-dir at an existing store."
        )
    store = ModelStore(root)
    try:
        found = store.resolve(settings.name, settings.version)
    except ModelNotFound as exc:
        raise ModelLoadError(
            f"{exc}. Publish one with `{_train_hint(settings)}`, or list what exists with "
            f"`sentiment-models --models-dir {root} list`."
        ) from exc
    except (InvalidReference, StoreError, ValueError) as exc:
        raise ModelLoadError(f"cannot resolve model {settings.name!r} version {settings.version!r}: {exc}") from exc
    problems = verify_directory(found.path, found.name, found.version)
    if problems:
        raise ModelLoadError(
            f"model {found.name} version {found.version} at {found.path} does not match its manifest: "
            + "; ".join(problems)
            + f". Do not edit published versions: republish with `{_train_hint(settings)}` or serve another "
            f"version (--model-version / SENTIMENT_VERSION); `sentiment-models --models-dir {root} verify` "
            "runs the same check."
        )
    manifest = read_manifest(found.path)
    labels, temperature = _check_contents(found.path, manifest)
    return ModelSource(found.name, found.version, found.path, manifest, labels, temperature)


def _check_contents(path: Path, manifest: dict[str, Any]) -> tuple[list[str], float]:
    """The manifest must agree with config.json; weights must be safetensors."""
    missing = [f for f in _REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        raise ModelLoadError(f"{path} lacks {', '.join(missing)}: it is not a servable model directory")
    pickles = sorted(p.name for p in path.rglob("*") if p.suffix in _PICKLE_SUFFIXES)
    if pickles:
        raise ModelLoadError(f"{path} holds pickle-based weight files {pickles}; only safetensors are loaded")
    labels = manifest.get("labels")
    if (
        not isinstance(labels, list)
        or len(labels) < 2
        or not all(isinstance(x, str) and x for x in labels)
        or len(set(labels)) != len(labels)
    ):
        raise ModelLoadError(f"{path}/manifest.json: 'labels' must list at least two distinct names, got {labels!r}")
    temperature = manifest.get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not math.isfinite(temperature):
        raise ModelLoadError(f"{path}/manifest.json: 'temperature' must be a number, got {temperature!r}")
    if temperature <= 0:
        raise ModelLoadError(f"{path}/manifest.json: 'temperature' must be positive, got {temperature!r}")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        id2label = {int(k): v for k, v in config["id2label"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelLoadError(f"{path}/config.json is unreadable or lacks id2label: {exc}") from exc
    config_labels = [id2label.get(i) for i in range(len(id2label))]
    if config_labels != labels:
        raise ModelLoadError(
            f"{path}: manifest labels {labels} disagree with config.json id2label {config_labels}; "
            "the model would report wrong labels, so it is refused"
        )
    return labels, float(temperature)


def load(source: ModelSource, settings: Settings) -> LoadedModel:
    """Tokenizer + weights onto the configured device and precision."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from app.model.precision import prepare_forward
    from app.model.selection import resolve_precision

    torch.set_num_threads(settings.torch_threads)
    device = settings.resolved_device()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} requested but CUDA is not available: use --device cpu or auto")
    precision = resolve_precision(settings, source, device)
    dtype = precision.dtype
    hf_logging.disable_progress_bar()  # a progress bar per start-up is noise in service logs
    try:
        hf_tokenizer = AutoTokenizer.from_pretrained(source.path, local_files_only=True, trust_remote_code=False)
        model = AutoModelForSequenceClassification.from_pretrained(
            source.path, use_safetensors=True, local_files_only=True, trust_remote_code=False
        )
    except Exception as exc:  # safetensors, tokenizers and config parsing each raise their own types
        raise ModelLoadError(f"{source.path} could not be loaded ({type(exc).__name__}: {exc})") from exc
    if not getattr(hf_tokenizer, "is_fast", False):
        raise ModelLoadError(f"{source.path}: tokenizer.json did not yield a fast tokenizer")
    if model.config.num_labels != len(source.labels):
        raise ModelLoadError(f"{source.path}: model has {model.config.num_labels} outputs for labels {source.labels}")

    position_limit = int(getattr(model.config, "max_position_embeddings", 512))
    max_length = settings.max_length or min(int(hf_tokenizer.model_max_length), position_limit)
    if max_length > position_limit:
        raise ModelLoadError(f"max_length {max_length} exceeds the model's {position_limit} positions")
    if settings.max_batch_tokens < padded_length(max_length, position_limit):
        raise ModelLoadError(
            f"max_batch_tokens ({settings.max_batch_tokens}) cannot hold one input of {max_length} tokens: "
            f"raise SENTIMENT_MAX_BATCH_TOKENS to at least {padded_length(max_length, position_limit)} "
            "or lower SENTIMENT_MAX_LENGTH"
        )
    tokenizer = hf_tokenizer.backend_tokenizer
    # tokenizer.json may carry padding/truncation from its origin (MiniLM's pads to 128).
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    forward = prepare_forward(model, device, dtype)
    log.info(
        "loaded %s version %d from %s on %s/%s (max_length %d)",
        source.name,
        source.version,
        source.path,
        device,
        dtype,
        max_length,
    )
    return LoadedModel(
        source=source,
        tokenizer=tokenizer,
        pad_id=int(hf_tokenizer.pad_token_id or 0),
        max_length=max_length,
        position_limit=position_limit,
        device=device,
        dtype=dtype,
        forward=forward,
        precision=precision,
    )


def load_model(settings: Settings) -> LoadedModel:
    return load(locate(settings), settings)
