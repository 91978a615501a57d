"""How a batch of token id lists becomes rectangular tensors: the one padding rule (torch-free).

Batches pad to their longest input; on CUDA the width is rounded up to a multiple of 8 (tensor
cores), on a CPU every padded token costs compute and rounding buys nothing (measured: cost per
sentence grows with the exact width). Never past the model's position limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

PAD_MULTIPLE = 8


def pad_multiple(device: str) -> int:
    return PAD_MULTIPLE if device.startswith("cuda") else 1


def padded_length(longest: int, cap: int | None = None, multiple: int = PAD_MULTIPLE) -> int:
    padded = -(-longest // multiple) * multiple
    return padded if cap is None else min(padded, cap)


class PaddedBatch(NamedTuple):
    """A rectangular batch: every input padded to the batch's width (tensors, or arrays before conversion)."""

    input_ids: Any  # [inputs, width]
    attention_mask: Any  # [inputs, width], 1 for real tokens

    def to(self, device: Any, non_blocking: bool = False) -> PaddedBatch:
        return PaddedBatch(
            self.input_ids.to(device, non_blocking=non_blocking),
            self.attention_mask.to(device, non_blocking=non_blocking),
        )


def pad_batch(
    ids: Sequence[Sequence[int]], pad_id: int, cap: int | None = None, multiple: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask) as int64 arrays of shape [len(ids), padded width]."""
    width = padded_length(max(len(x) for x in ids), cap, multiple)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return input_ids, mask
