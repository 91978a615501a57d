"""Parity: how closely each reduced serving precision reproduces fp32, and packed execution reproduces
padded execution, on labelled dev data.

Every precision runs through the service's own forward path (`inference.precision.prepare_forward`)
with the service's tokenisation (truncation at the model's limit, no padding) and its padding rule
(length-sorted batches padded as the service pads on that device), so what is recorded is what the service would
answer. Per precision (see docs/model-format.md, `precision_parity`):

- `agreement`: share of examples whose predicted label equals fp32's;
- `accuracy_delta`: accuracy minus fp32's accuracy on the same examples (negative = a drop);
- `max_prob_diff`: largest absolute difference of any temperature-calibrated probability from fp32's.

Packing records (`packing_parity`, one per precision) compare packed with padded logits of the same
precision, in batches of mixed lengths taken in a fixed shuffled order, as traffic arrives.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference.packing import PackedBatch
from inference.padding import PaddedBatch, pad_batch, pad_multiple
from inference.scores import softmax

log = logging.getLogger(__name__)

# Enough for a tight agreement estimate (±0.3% at 99%) while bounding publish time on big dev sets.
MAX_EXAMPLES = 5000
BATCH_SIZE = 64


def length_sorted_batches(
    ids: list[list[int]], pad_id: int, position_limit: int, batch_size: int = BATCH_SIZE, multiple: int = 1
) -> list[tuple[np.ndarray, PaddedBatch]]:
    """(row indices, padded batch) per batch, length-sorted and padded the way the service pads."""
    import torch

    order = np.argsort([len(x) for x in ids], kind="stable")
    out = []
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        input_ids, mask = pad_batch([ids[r] for r in rows], pad_id, position_limit, multiple)
        out.append((rows, PaddedBatch(torch.from_numpy(input_ids), torch.from_numpy(mask))))
    return out


def arrival_order_packs(ids: list[list[int]], batch_size: int = BATCH_SIZE) -> list[tuple[np.ndarray, PackedBatch]]:
    """(row indices, packed batch) per batch, in a fixed shuffled order: mixed lengths, as traffic arrives."""
    from inference.packing import pack

    order = np.random.default_rng(0).permutation(len(ids))
    return [(rows, pack([ids[r] for r in rows])) for rows in np.array_split(order, max(1, -(-len(ids) // batch_size)))]


def run_batches(forward: Any, batches: list[tuple[np.ndarray, Any]], n: int, device: str) -> np.ndarray:
    out: np.ndarray | None = None
    for rows, batch in batches:
        logits = forward(batch.to(device))
        if out is None:
            out = np.empty((n, logits.shape[1]), dtype=np.float32)
        out[rows] = logits
    assert out is not None
    return out


def compare(reference: np.ndarray, logits: np.ndarray, labels: np.ndarray, temperature: float) -> dict[str, Any]:
    """The parity record of `logits` against the fp32 `reference` (both [n, labels])."""
    ref_pred, pred = reference.argmax(1), logits.argmax(1)
    ref_acc, acc = float((ref_pred == labels).mean()), float((pred == labels).mean())
    diff = np.abs(softmax(logits, temperature) - softmax(reference, temperature))
    return {
        "agreement": round(float((pred == ref_pred).mean()), 6),
        "accuracy_delta": round(acc - ref_acc, 6),
        "max_prob_diff": round(float(diff.max()), 6),
        "mean_prob_diff": round(float(diff.mean()), 6),
        "accuracy": round(acc, 6),
        "fp32_accuracy": round(ref_acc, 6),
        "examples": len(labels),
    }


def subsample(n: int, limit: int = MAX_EXAMPLES) -> np.ndarray:
    """Indices of at most `limit` examples, the same ones on every run."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, size=limit, replace=False))


@dataclass
class Parity:
    """What `measure` found: reduced precisions against fp32, and packed against padded per precision."""

    precision: dict[str, dict[str, Any]] = field(default_factory=dict)
    packing: dict[str, dict[str, Any]] = field(default_factory=dict)


def measure(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    label_ids: Sequence[int],
    temperature: float,
    device: str,
    precisions: Sequence[str] | None = None,
    max_length: int | None = None,
) -> Parity:
    """Parity of each precision with fp32, and of packed with padded execution in each precision (fp32
    included), on (a fixed subsample of) the labelled texts.

    `model` stays fp32 (every run uses a deep copy). A precision that cannot run here is logged and
    left out, and packing is left out for models that cannot be packed: the service never picks an
    unmeasured precision or layout on its own.
    """
    from inference.hardware import cuda_bf16_supported
    from inference.packing import packing_problem
    from inference.precision import method, prepare_forward, runnable_precisions
    from inference.tokens import encode, position_limit, resolve_max_length, serving_tokenizer

    keep = subsample(len(texts))
    texts = [texts[i] for i in keep]
    labels = np.asarray(label_ids)[keep]
    positions = position_limit(model.config)
    max_length = resolve_max_length(max_length, tokenizer.model_max_length, positions)
    ids: list[list[int]] = encode(serving_tokenizer(tokenizer, max_length), texts).ids  # type: ignore[assignment]
    pad_id = int(tokenizer.pad_token_id or 0)
    batches = length_sorted_batches(ids, pad_id, positions, multiple=pad_multiple(device))
    packable = packing_problem(model) is None
    packs = arrival_order_packs(ids) if packable else []
    if precisions is None:
        precisions = runnable_precisions(device, device.startswith("cuda") and cuda_bf16_supported())
    found = Parity()
    reference: np.ndarray | None = None
    for precision in ["fp32", *precisions]:
        candidate = copy.deepcopy(model)
        try:
            forward = prepare_forward(candidate, device, precision, packed=packable)  # type: ignore[arg-type]
            padded = run_batches(forward, batches, len(texts), device)
            packed = run_batches(forward, packs, len(texts), device) if packable else None
        except Exception as exc:  # a kernel or quantisation engine this build lacks
            log.warning("parity: %s cannot run on %s (%r); not recorded", precision, device, exc)
            continue
        finally:
            del candidate
        how = {"device": device.split(":")[0], "method": method(device, precision)}  # type: ignore[arg-type]
        if reference is None:
            reference = padded
        else:
            found.precision[precision] = {**compare(reference, padded, labels, temperature), **how}
        if packed is not None:
            found.packing[precision] = {**compare(padded, packed, labels, temperature), **how, "layout": "packed"}
    return found


def host_details(device: str) -> dict[str, Any]:
    """What the measuring host was, for people reading a record."""
    import torch

    from inference.hardware import cpu_features

    if device.startswith("cuda"):
        return {"device": "cuda", "gpu": torch.cuda.get_device_name(torch.device(device).index or 0)}
    cpu = cpu_features()
    return {"device": "cpu", "cpu": cpu.describe(), "torch": torch.__version__, "threads": torch.get_num_threads()}
