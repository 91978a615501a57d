"""Which queued inputs form the next batch: a pure function of their lengths (no I/O, no state).

The batch grows around one anchor input (the oldest queued, so nothing starves) over the
length-sorted window, each step taking the neighbour, shorter or longer, that leaves the batch with
the lowest padding ratio (longest x count / real tokens). Judging the ratio rather than the padding a
step adds looks past the next step: widening a batch by a few tokens costs every input in it once,
but lets many longer inputs join at no further cost, where a run of much shorter inputs each adds
little padding but leaves the batch mostly padding.
It stops at `max_size` inputs, at `max_tokens` padded tokens (`multiple`-rounded longest x count),
or, once it holds `min_fill` inputs or `min_fill_tokens` real tokens, when the next input would push
(longest x count) / real tokens above `max_padding_ratio`: padded positions are pure waste, and on a
CPU two well-packed batches cost less than one ragged one. The token floor matters for long inputs:
one of 400 tokens is plenty of work alone, and growing it to 8 inputs would pad short neighbours to
its length (measured on the mixed benchmark workload: ~10% more sentences per CPU-second than the
8-input floor alone; docs/performance.md). Before that fill, a step above the ratio is still taken
while the batch holds at most `fill_slack` padded positions (a few short inputs together beat one
forward pass each), but not one that would pad a short input to a long one's length: with two
inference workers, batches are often cut from a shallow queue, where that used to happen (1-text
requests at concurrency 16: padding 1.23 with no bound on it, 1.12 with 32 positions, and ~10% more
sentences/s; 0 positions: 1.04 but batches of two, and 15% fewer).
"""

from __future__ import annotations

from collections.abc import Sequence

from app.engine.contract import BatchPolicy
from inference.padding import PAD_MULTIPLE, padded_length


def batch_tokens(lengths: Sequence[int], packed: bool, multiple: int = PAD_MULTIPLE) -> int:
    """What a batch costs the model in tokens: its real tokens when packed, `longest x count` when padded."""
    if packed:
        return sum(lengths)
    return padded_length(max(lengths), multiple=multiple) * len(lengths)


def pick_batch(lengths: Sequence[int], policy: BatchPolicy, shallow: bool) -> list[int]:
    """Indices (into the oldest-first window `lengths`) of the next batch under `policy`.

    Packed: oldest first against the real-token budget. Padded: the whole window when the queue is
    shallow (`shallow`: nothing beyond the window), no padding limit applies and it fits; otherwise
    grown around the oldest input.
    """
    p = policy
    if p.packed:
        return list(range(take_in_order(lengths, p.max_batch_size, p.max_batch_tokens)))
    whole = padded_length(max(lengths), multiple=p.pad_multiple) * len(lengths)
    if shallow and p.max_padding_ratio is None and len(lengths) <= p.max_batch_size and whole <= p.max_batch_tokens:
        return list(range(len(lengths)))
    return grow_batch(lengths, 0, p.max_batch_size, p.max_batch_tokens, p.max_padding_ratio, multiple=p.pad_multiple)


def take_in_order(lengths: Sequence[int], max_size: int, max_tokens: int) -> int:
    """How many inputs, oldest first, a packed batch takes: there padding costs nothing, so arrival order
    is the fairest and cheapest grouping (no sorting, no starvation). Always at least one."""
    taken = tokens = 0
    for length in lengths:
        if taken and (taken == max_size or tokens + length > max_tokens):
            break
        taken += 1
        tokens += length
    return taken


def grow_batch(
    lengths: Sequence[int],
    anchor: int,
    max_size: int,
    max_tokens: int,
    max_padding_ratio: float | None = None,
    min_fill: int = 8,
    min_fill_tokens: int = 128,
    multiple: int = PAD_MULTIPLE,
    fill_slack: int = 32,
) -> list[int]:
    """Indices into `lengths` of the next batch, always including `anchor`, in ascending length."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    lo = hi = order.index(anchor)
    longest = lengths[anchor]
    real = longest
    count = 1
    ratio_limit = max_padding_ratio if max_padding_ratio is not None else float("inf")
    while count < max_size:
        best: tuple[float, int, int] | None = None  # (padding ratio after the step, side, new longest)
        filled = count >= min_fill or real >= min_fill_tokens
        if lo > 0:
            shorter = lengths[order[lo - 1]]
            if _fits(longest, count + 1, real + shorter, max_tokens, ratio_limit, filled, multiple, fill_slack):
                best = (longest * (count + 1) / max(real + shorter, 1), -1, longest)
        if hi < len(order) - 1:
            longer = lengths[order[hi + 1]]
            if _fits(longer, count + 1, real + longer, max_tokens, ratio_limit, filled, multiple, fill_slack):
                ratio = longer * (count + 1) / max(real + longer, 1)
                if best is None or ratio < best[0]:
                    best = (ratio, 1, longer)
        if best is None:
            break
        if best[1] < 0:
            lo -= 1
            real += lengths[order[lo]]
        else:
            hi += 1
            real += lengths[order[hi]]
        longest = best[2]
        count += 1
    return order[lo : hi + 1]


def _fits(
    longest: int, count: int, real: int, max_tokens: int, ratio_limit: float, filled: bool, multiple: int, slack: int
) -> bool:
    if padded_length(longest, multiple=multiple) * count > max_tokens:
        return False
    # The ratio judges grouping only: rounding up to a multiple costs the same however inputs are grouped.
    if longest * count <= ratio_limit * max(real, 1):
        return True
    return not filled and longest * count - real <= slack
