"""The engine's two inputs: the model shape it drives and the policy it batches by."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from inference.padding import PAD_MULTIPLE
from inference.tokens import Tokenized


class BatchModel(Protocol):
    def tokenize(self, texts: Sequence[str], chunk: bool = False) -> Tokenized: ...

    def collate(self, ids: Sequence[Sequence[int]]) -> Any: ...

    def predict(self, batch: Any) -> np.ndarray: ...


@dataclass(frozen=True)
class BatchPolicy:
    max_batch_size: int = 64
    max_batch_tokens: int = 8192
    # While every worker computes, how long the next batch may keep filling. None: until just before the
    # first worker is expected to free up (app/engine/costs.py), which fills it without idling the device.
    max_wait_s: float | None = None
    sort_window: int = 256
    queue_capacity: int = 2048
    max_padding_ratio: float | None = None  # None: fill to the budgets whatever the padding
    workers: int = 1  # inference threads, each computing one batch at a time
    # Threads a forward pass may use when it computes alone (0: leave the model's setting); while
    # other workers compute too, each uses threads // workers, so the cores are shared, not oversubscribed.
    threads: int = 0
    pad_multiple: int = PAD_MULTIPLE  # batch width rounding (inference.padding.pad_multiple: 8 on CUDA, 1 on CPU)
    # The model runs packed batches (inference/packing.py): a batch costs its real tokens, so batches are
    # cut in arrival order against the token budget; the padding ratio and length grouping do not apply.
    packed: bool = False
