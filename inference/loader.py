"""Find, verify and load a published version, refusing anything damaged.

Two steps so a caller can refuse a bad model before it opens a port: `locate` resolves the version in
the store and applies the store's servable rules (cheap: checksums and metadata), `load` builds the
tokenizer and the model from safetensors only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.errors import ModelLoadError
from inference.options import Dtype, LoadOptions
from inference.padding import padded_length
from inference.source import ModelSource
from store.errors import ModelNotFound, StoreError, VerificationError
from store.model_store import ModelStore

log = logging.getLogger("inference.loader")


@dataclass
class LoadedModel:
    source: ModelSource
    tokenizer: Any  # tokenizers.Tokenizer (the fast backend), truncating at max_length, no padding
    pad_id: int
    max_length: int
    position_limit: int
    device: str
    dtype: Dtype
    forward: Any  # batch (padded or packed) -> float32 numpy logits; see inference/precision.py
    precision: Any = None  # inference.selection.PrecisionChoice: why `dtype` (None when built by hand)
    execution: Any = None  # inference.selection.ExecutionChoice: packed or padded, and why

    @property
    def packed(self) -> bool:
        return bool(self.execution is not None and self.execution.packed)


def _train_hint(store: ModelStore, name: str) -> str:
    return f"sentiment-train --models-dir {store.root} --name {name}"


def locate(store: ModelStore, name: str, ref: str | int = "latest") -> ModelSource:
    """Resolve name + version in the store and check it against every servable rule."""
    root = store.root
    if not root.is_dir():
        raise ModelLoadError(
            f"models directory {root} does not exist. Train and publish a model first: "
            f"`{_train_hint(store, name)}`, or point SENTIMENT_MODELS_DIR / --models-dir at an existing store."
        )
    try:
        found = store.resolve(name, ref)
    except ModelNotFound as exc:
        raise ModelLoadError(
            f"{exc}. Publish one with `{_train_hint(store, name)}`, or list what exists with "
            f"`sentiment-models --models-dir {root} list`."
        ) from exc
    except (StoreError, ValueError, OSError) as exc:
        raise ModelLoadError(f"cannot resolve model {name!r} version {ref!r}: {exc}") from exc
    try:
        servable = store.servable(found)
    except VerificationError as exc:
        raise ModelLoadError(
            f"model {found.name} version {found.version} at {found.path} cannot be served: "
            + "; ".join(exc.problems)
            + f". Do not edit published versions: republish with `{_train_hint(store, name)}` or serve another "
            f"version (--model-version / SENTIMENT_VERSION); `sentiment-models --models-dir {root} verify` "
            "runs the same check."
        ) from exc
    return ModelSource(found.name, found.version, found.path, servable.manifest, servable.labels, servable.temperature)


def read_pretrained(path: Path) -> tuple[Any, Any]:
    """(fp32 model in eval mode on the CPU, HF tokenizer) from a version directory: safetensors only,
    never remote code, never the network."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a progress bar per start-up is noise in service logs
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, use_safetensors=True, local_files_only=True, trust_remote_code=False
        )
    except Exception as exc:  # safetensors, tokenizers and config parsing each raise their own types
        raise ModelLoadError(f"{path} could not be loaded ({type(exc).__name__}: {exc})") from exc
    return model.eval(), tokenizer


def load(source: ModelSource, options: LoadOptions, store: ModelStore) -> LoadedModel:
    """Tokenizer + weights onto the configured device and precision."""
    import torch

    from inference.precision import prepare_forward
    from inference.selection import resolve_packing, resolve_precision
    from inference.tokens import position_limit, resolve_max_length, serving_tokenizer

    if options.torch_threads:
        torch.set_num_threads(options.torch_threads)
    device = options.resolved_device()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} requested but CUDA is not available: use --device cpu or auto")
    precision = resolve_precision(options, store, source, device)
    model, hf_tokenizer = read_pretrained(source.path)
    if model.config.num_labels != len(source.labels):
        raise ModelLoadError(f"{source.path}: model has {model.config.num_labels} outputs for labels {source.labels}")
    positions = position_limit(model.config)
    max_length = resolve_max_length(options.max_length, hf_tokenizer.model_max_length, positions)
    if options.max_batch_tokens is not None and options.max_batch_tokens < padded_length(max_length, positions):
        raise ModelLoadError(
            f"max_batch_tokens ({options.max_batch_tokens}) cannot hold one input of {max_length} tokens: "
            f"raise SENTIMENT_MAX_BATCH_TOKENS to at least {padded_length(max_length, positions)} "
            "or lower SENTIMENT_MAX_LENGTH"
        )
    try:
        tokenizer = serving_tokenizer(hf_tokenizer, max_length)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{source.path}: {exc}") from exc
    execution = resolve_packing(options, store, source, device, precision.dtype, model)
    forward = prepare_forward(model, device, precision.dtype, packed=execution.packed)
    log.info(
        "loaded %s version %d from %s on %s/%s, %s batches (max_length %d)",
        source.name,
        source.version,
        source.path,
        device,
        precision.dtype,
        execution.layout,
        max_length,
    )
    return LoadedModel(
        source=source,
        tokenizer=tokenizer,
        pad_id=int(hf_tokenizer.pad_token_id or 0),
        max_length=max_length,
        position_limit=positions,
        device=device,
        dtype=precision.dtype,
        forward=forward,
        precision=precision,
        execution=execution,
    )


def load_model(store: ModelStore, name: str, ref: str | int, options: LoadOptions) -> LoadedModel:
    return load(locate(store, name, ref), options, store)
