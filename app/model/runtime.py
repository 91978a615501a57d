"""The loaded model in the shape the batching engine drives (app/batching.py `BatchModel`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from app.batching import OutOfMemory, Tokenized
from app.core.config import pad_multiple, padded_length
from app.model.loader import LoadedModel
from app.model.precision import is_out_of_memory, release_cached_memory


class TextClassifier:
    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self._tokenizer = loaded.tokenizer
        self._pad_id = loaded.pad_id
        self._cap = loaded.position_limit
        self._device = torch.device(loaded.device)
        self._on_gpu = loaded.device.startswith("cuda")
        self.pad_multiple = pad_multiple(loaded.device)
        self._forward = loaded.forward

    def tokenize(self, texts: Sequence[str]) -> Tokenized:
        # One Rust call per request; `_fast` skips character offsets we never use.
        encodings = self._tokenizer.encode_batch_fast(list(texts))
        ids = [e.ids for e in encodings]
        return Tokenized(ids=ids, lengths=[len(x) for x in ids], truncated=[bool(e.overflowing) for e in encodings])

    def collate(self, ids: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad to the batch's longest input, rounded up to `pad_multiple` (never past the position limit)."""
        width = padded_length(max(len(x) for x in ids), self._cap, self.pad_multiple)
        input_ids = np.full((len(ids), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        tensors = torch.from_numpy(input_ids), torch.from_numpy(mask)
        if self._on_gpu:
            # Pinned host memory lets the copy run asynchronously while the previous batch computes.
            return tuple(t.pin_memory().to(self._device, non_blocking=True) for t in tensors)  # type: ignore[return-value]
        return tensors

    def predict(self, batch: tuple[torch.Tensor, torch.Tensor]) -> np.ndarray:
        try:
            return self._forward(*batch)
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
