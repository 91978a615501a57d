"""Padding-free (packed) execution of BERT classifiers, through transformers' own extension points.

A padded batch costs `longest x count` tokens in every Linear, LayerNorm and GELU; a packed batch costs
its real tokens only. The texts of a batch are concatenated into one sequence of real tokens (no padding
rows) and run through the model's own HF modules and weights:

- the embeddings get position ids that restart at every input (token types are all 0, as for one text);
- every encoder layer runs unchanged; its attention goes through a function registered with
  transformers' `AttentionInterface` that attends within each input only. On CUDA in half precision it
  calls torch's variable-length flash kernel (`varlen_attn`, cumulative sequence lengths); elsewhere it
  runs SDPA per group of similar-length inputs (a few small padded blocks with a key mask), since for
  short texts attention is a few percent of the work and every call has a fixed cost;
- the pooler and the classifier read each input's first token from the packed output.

Under the registered name, a padded call (attention mask, no packing plan) behaves exactly like "sdpa",
so warm-up, parity and the padded fallback run through the same model object. Models this module does
not know how to pack (anything but a BertForSequenceClassification encoder) keep the padded path.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

PACKED_ATTENTION = "sentiment_packed"
# Inputs whose lengths differ by at most this factor (or by GROUP_SLACK tokens) share one attention
# block: fewer SDPA calls per layer against a little masked work (measured in bench/packing.py).
GROUP_RATIO = 1.5
GROUP_SLACK = 8


@dataclass
class AttentionGroup:
    """Inputs of similar length attended together as one [count, heads, width, head_dim] block."""

    count: int
    width: int
    gather: torch.Tensor  # [count * width] packed-token index per slot (padding slots repeat a real token)
    valid: torch.Tensor  # slots that hold real tokens
    scatter: torch.Tensor  # where each real slot's output goes in the packed sequence
    key_mask: torch.Tensor | None  # [count, 1, 1, width] True = attend; None when every input is `width` long


@dataclass
class PackedBatch:
    """One batch of texts as a single padding-free token sequence."""

    input_ids: torch.Tensor  # [1, tokens]
    position_ids: torch.Tensor  # [1, tokens], restarting at 0 for every input
    starts: torch.Tensor  # [inputs] index of each input's first token
    cu_seqlens: torch.Tensor  # [inputs + 1] int32 cumulative lengths (the varlen kernel's layout)
    max_length: int
    groups: list[AttentionGroup]

    @property
    def size(self) -> int:
        return int(self.starts.shape[0])

    @property
    def tokens(self) -> int:
        return int(self.input_ids.shape[1])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PackedBatch:
        def move(t: torch.Tensor | None) -> Any:
            return None if t is None else t.to(device, non_blocking=non_blocking)

        groups = [
            AttentionGroup(g.count, g.width, move(g.gather), move(g.valid), move(g.scatter), move(g.key_mask))
            for g in self.groups
        ]
        return PackedBatch(
            move(self.input_ids),
            move(self.position_ids),
            move(self.starts),
            move(self.cu_seqlens),
            self.max_length,
            groups,
        )


def attention_groups(lengths: Sequence[int], ratio: float = GROUP_RATIO, slack: int = GROUP_SLACK) -> list[list[int]]:
    """Indices of the inputs in each attention group: ascending length, a new group once an input is
    longer than both `ratio` times and `slack` tokens more than the group's shortest."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    groups: list[list[int]] = []
    for k in order:
        if groups:
            shortest = lengths[groups[-1][0]]
            if lengths[k] <= max(shortest * ratio, shortest + slack):
                groups[-1].append(k)
                continue
        groups.append([k])
    return groups


def pack(ids: Sequence[Sequence[int]], ratio: float = GROUP_RATIO, slack: int = GROUP_SLACK) -> PackedBatch:
    """The packed layout of `ids` (CPU tensors; `PackedBatch.to` moves them)."""
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    if not len(lengths) or lengths.min() < 1:
        raise ValueError("every input of a packed batch needs at least one token")
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(offsets[-1]))
    positions = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    groups = []
    for members in attention_groups(lengths.tolist(), ratio, slack):
        width = int(lengths[members[-1]])
        slot = np.arange(width)
        member_lengths = lengths[members][:, None]
        real = slot[None, :] < member_lengths  # [count, width]
        gather = np.where(real, offsets[members][:, None] + slot[None, :], offsets[members][:, None])
        flat_real = real.reshape(-1)
        uniform = bool(real.all())
        groups.append(
            AttentionGroup(
                count=len(members),
                width=width,
                gather=torch.from_numpy(gather.reshape(-1)),
                valid=torch.from_numpy(np.flatnonzero(flat_real)),
                scatter=torch.from_numpy(gather.reshape(-1)[flat_real]),
                key_mask=None if uniform else torch.from_numpy(real[:, None, None, :].copy()),
            )
        )
    return PackedBatch(
        input_ids=torch.from_numpy(tokens)[None],
        position_ids=torch.from_numpy(positions)[None],
        starts=torch.from_numpy(offsets[:-1].copy()),
        cu_seqlens=torch.from_numpy(offsets.astype(np.int32)),
        max_length=int(lengths.max()),
        groups=groups,
    )


def packing_problem(model: Any) -> str | None:
    """Why `model` cannot run packed (None when it can): this module knows BERT's embeddings and head."""
    from transformers import BertForSequenceClassification

    if not isinstance(model, BertForSequenceClassification):
        return f"{type(model).__name__} is not a BertForSequenceClassification; only BERT encoders are packed"
    config = model.config
    if config.is_decoder or getattr(config, "add_cross_attention", False):
        return "a decoder or cross-attention BERT attends across positions differently"
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return f"position_embedding_type {config.position_embedding_type!r}: only absolute positions restart per input"
    if model.bert.pooler is None:
        return "the model has no pooler to read the first token through"
    return None


def enable_packing(model: Any) -> None:
    """Route the model's attention through the packed-attention function (padded calls behave as sdpa)."""
    _register()
    model.config._attn_implementation = PACKED_ATTENTION


def packed_logits(model: Any, batch: PackedBatch) -> torch.Tensor:
    """[inputs, labels] logits of a packed batch, through the model's own modules."""
    bert = model.bert
    embeddings = bert.embeddings(
        input_ids=batch.input_ids,
        position_ids=batch.position_ids,
        token_type_ids=torch.zeros_like(batch.input_ids),
    )
    hidden = bert.encoder(embeddings, attention_mask=None, packed=batch).last_hidden_state
    first_tokens = hidden[0].index_select(0, batch.starts).unsqueeze(1)  # [inputs, 1, hidden]: the pooler reads [:, 0]
    return model.classifier(model.dropout(bert.pooler(first_tokens)))


def packed_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    packed: PackedBatch | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function contract: [1, heads, tokens, head_dim] in, [1, tokens, heads, head_dim] out."""
    if packed is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))  # [tokens, heads, head_dim]
    if q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) and _varlen() is not None:
        out = _varlen()(
            q, k, v, packed.cu_seqlens, packed.cu_seqlens, packed.max_length, packed.max_length, scale=scaling
        )
        return out.unsqueeze(0), None
    out = torch.empty_like(q)
    heads, head_dim = q.shape[1], q.shape[2]
    for group in packed.groups:
        blocks = [
            t.index_select(0, group.gather).view(group.count, group.width, heads, head_dim).transpose(1, 2)
            for t in (q, k, v)
        ]
        attended = torch.nn.functional.scaled_dot_product_attention(*blocks, attn_mask=group.key_mask, scale=scaling)
        rows = attended.transpose(1, 2).reshape(group.count * group.width, heads, head_dim)
        out.index_copy_(0, group.scatter, rows.index_select(0, group.valid))
    return out.unsqueeze(0), None


_VARLEN: list[Any] = []


def _varlen() -> Any:
    """torch's variable-length flash attention (CUDA), or None where this torch lacks it."""
    if not _VARLEN:
        try:
            from torch.nn.attention.varlen import varlen_attn
        except ImportError:
            varlen_attn = None
        _VARLEN.append(varlen_attn)
    return _VARLEN[0]


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(PACKED_ATTENTION, packed_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(PACKED_ATTENTION, sdpa_mask)
