"""Which queued inputs form the next batch: a pure function of their lengths (no I/O, no state).

The batch grows around one anchor input (the oldest queued, so nothing starves) over the
length-sorted window, each step taking the neighbour, shorter or longer, that adds the least padding.
It stops at `max_size` inputs, at `max_tokens` padded tokens (longest x count), or, once it holds
`min_fill` inputs, when the next input would push (longest x count) / real tokens above
`max_padding_ratio`: padded positions are pure waste, and on a CPU two well-packed batches cost
less than one ragged one.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.core.config import padded_length


def grow_batch(
    lengths: Sequence[int],
    anchor: int,
    max_size: int,
    max_tokens: int,
    max_padding_ratio: float | None = None,
    min_fill: int = 8,
) -> list[int]:
    """Indices into `lengths` of the next batch, always including `anchor`, in ascending length."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    lo = hi = order.index(anchor)
    longest = lengths[anchor]
    real = longest
    count = 1
    ratio_limit = max_padding_ratio if max_padding_ratio is not None else float("inf")
    while count < max_size:
        best: tuple[int, int, int] | None = None  # (added padding, side, new longest)
        if lo > 0:
            shorter = lengths[order[lo - 1]]
            if _fits(longest, count + 1, real + shorter, max_tokens, ratio_limit, count >= min_fill):
                best = (longest - shorter, -1, longest)
        if hi < len(order) - 1:
            longer = lengths[order[hi + 1]]
            if _fits(longer, count + 1, real + longer, max_tokens, ratio_limit, count >= min_fill):
                cost = (longer - longest) * count
                if best is None or cost < best[0]:
                    best = (cost, 1, longer)
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


def _fits(longest: int, count: int, real: int, max_tokens: int, ratio_limit: float, filled: bool) -> bool:
    if padded_length(longest) * count > max_tokens:
        return False
    # The ratio judges grouping only: rounding up to a multiple of 8 costs the same however inputs are grouped.
    return not filled or longest * count <= ratio_limit * max(real, 1)
