"""Tokenisation as the service does it, in one place: the serving tokenizer and the token limit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inference.errors import ModelLoadError
from inference.windows import window_overlap


@dataclass(slots=True)
class Tokenized:
    """One request's texts as token ids (the shape the batching engine queues).

    `ids` and `lengths` have one entry per model input, `truncated` one per text. Without `windows`
    every text is one input; with it (chunk mode) text t is the next `windows[t]` inputs.
    """

    ids: list[Sequence[int]]
    lengths: list[int]
    truncated: list[bool]
    windows: list[int] | None = None


def position_limit(model_config: Any) -> int:
    return int(getattr(model_config, "max_position_embeddings", 512))


def resolve_max_length(requested: int | None, tokenizer_limit: int, positions: int) -> int:
    """The token limit per input: the requested one, else the smaller of the tokenizer's and the model's."""
    max_length = requested or min(int(tokenizer_limit), positions)
    if max_length > positions:
        raise ModelLoadError(f"max_length {max_length} exceeds the model's {positions} positions")
    return max_length


def serving_tokenizer(hf_tokenizer: Any, max_length: int) -> Any:
    """A private copy of the fast (Rust) tokenizer that truncates at `max_length` and never pads.

    A copy, because tokenizer.json carries padding/truncation settings from its origin (MiniLM's pads
    to 128) and the caller's tokenizer may still be saved or used elsewhere.
    """
    from tokenizers import Tokenizer

    if not getattr(hf_tokenizer, "is_fast", False):
        raise ModelLoadError("the tokenizer is not a fast (tokenizer.json) tokenizer")
    backend = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.enable_truncation(max_length)
    return backend


def encode(tokenizer: Any, texts: Sequence[str]) -> Tokenized:
    # One Rust call per request; `_fast` skips character offsets we never use.
    encodings = tokenizer.encode_batch_fast(list(texts))
    ids = [e.ids for e in encodings]
    return Tokenized(ids=ids, lengths=[len(x) for x in ids], truncated=[bool(e.overflowing) for e in encodings])


def windowing_tokenizer(serving: Any, max_length: int, overlap: int | None = None) -> Any:
    """A copy of the serving tokenizer that returns a long text as overlapping windows instead of cutting it.

    The Rust tokenizer does the cutting (truncation with a stride): every window holds at most
    `max_length` tokens including the special ones it adds to each, consecutive windows share
    `overlap` text tokens (default `window_overlap`; other values are for measuring), and a text within
    the limit comes out exactly as `serving` encodes it.
    """
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(serving.to_str())
    room = max_length - backend.num_special_tokens_to_add(False)
    if room < 1:
        raise ModelLoadError(f"max_length {max_length} leaves no room for text between the special tokens")
    stride = window_overlap(room) if overlap is None else overlap
    if not 0 <= stride < room:
        raise ModelLoadError(f"window overlap {stride} must be at least 0 and below the {room} text tokens per window")
    backend.no_padding()
    backend.enable_truncation(max_length, stride=stride)
    return backend


def encode_windows(tokenizer: Any, texts: Sequence[str]) -> Tokenized:
    """`texts` through a `windowing_tokenizer`: every window is one model input; nothing is truncated."""
    encodings = tokenizer.encode_batch_fast(list(texts))
    ids: list[Sequence[int]] = []
    windows: list[int] = []
    for encoding in encodings:
        ids.append(encoding.ids)
        ids.extend(part.ids for part in encoding.overflowing)
        windows.append(1 + len(encoding.overflowing))
    return Tokenized(ids=ids, lengths=[len(x) for x in ids], truncated=[False] * len(encodings), windows=windows)
