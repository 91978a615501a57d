"""A loaded version in the shape the batching engine drives: tokenize, collate, predict.

tokenize(texts, chunk) -> Tokenized once per request, off the event loop (chunk: long texts as windows)
collate(ids)    -> batch            pads one batch; runs while the previous batch computes
predict(batch)  -> logits [n, C]    the forward pass (float32 numpy), in an inference thread
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from inference.errors import OutOfMemory
from inference.loader import LoadedModel
from inference.packing import PackedBatch, pack
from inference.padding import PaddedBatch, pad_batch, pad_multiple
from inference.precision import is_out_of_memory, release_cached_memory
from inference.tokens import Tokenized, encode, encode_windows, windowing_tokenizer


class TextClassifier:
    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self._tokenizer = loaded.tokenizer
        self._pad_id = loaded.pad_id
        self._cap = loaded.position_limit
        self._device = torch.device(loaded.device)
        self._on_gpu = loaded.device.startswith("cuda")
        self.pad_multiple = pad_multiple(loaded.device)
        self.packed = loaded.packed
        self._forward = loaded.forward
        self._windowing: Any = None  # built on the first chunked request (most services never see one)

    def tokenize(self, texts: Sequence[str], chunk: bool = False) -> Tokenized:
        if not chunk:
            return encode(self._tokenizer, texts)
        if self._windowing is None:
            self._windowing = windowing_tokenizer(self._tokenizer, self.loaded.max_length)
        return encode_windows(self._windowing, texts)

    def collate(self, ids: Sequence[Sequence[int]]) -> PaddedBatch | PackedBatch:
        if self.packed:
            batch: PaddedBatch | PackedBatch = pack(ids)
        else:
            input_ids, mask = pad_batch(ids, self._pad_id, self._cap, self.pad_multiple)
            batch = PaddedBatch(torch.from_numpy(input_ids), torch.from_numpy(mask))
        if self._on_gpu:
            # The copy runs asynchronously while the previous batch computes.
            return batch.to(self._device, non_blocking=True)
        return batch

    def predict(self, batch: PaddedBatch | PackedBatch) -> np.ndarray:
        try:
            return self._forward(batch)
        except Exception as exc:
            if is_out_of_memory(exc):
                release_cached_memory(self.loaded.device)
                raise OutOfMemory(str(exc)) from exc
            raise

    def sample_ids(self, length: int) -> list[int]:
        """A synthetic input of exactly `length` tokens (warm-up at the token budget)."""
        encoding = self._tokenizer.encode("warm up " * length)
        ids = list(encoding.ids)
        return ids if len(ids) == length else (ids[: length - 1] + ids[-1:])[:length]
