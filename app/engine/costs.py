"""What a forward pass costs on this device, measured, so the batcher can time its cuts.

A batch costs about `fixed + per_token x tokens` seconds (tokens: real ones when packed, padded ones
otherwise), with one `per_token` per intra-op thread count (a batch computing alone uses all threads,
two side by side one each). Warm-up seeds both numbers; every completed batch refines `per_token` with
an exponential moving average, so the estimate follows the machine (its CPU kind, its load) without a
knob per CPU model.

The batcher uses the estimate for one decision: while every worker computes, keep filling the next batch
until just before the first worker is expected to free up, then cut it. The batch then holds everything
that arrived meanwhile (as large as waiting can make it) and is ready the moment the device is, so the
wait costs no device time; an estimate that is too late only costs the hand-over from the event loop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

# Weight of the newest batch in the moving average: ~20 batches of memory, enough to ride out noise
# and still follow a change in machine load within a second of traffic.
SMOOTHING = 0.05


@dataclass
class ForwardCosts:
    fixed_s: float = 0.0
    per_token_s: dict[int, float] = field(default_factory=dict)  # intra-op threads -> seconds per token
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def seed(self, fixed_s: float, per_token_s: float, threads: int) -> None:
        with self._lock:
            self.fixed_s = max(0.0, fixed_s)
            self.per_token_s[threads] = max(per_token_s, 1e-9)

    def observe(self, seconds: float, tokens: int, threads: int) -> None:
        """One finished forward pass (called from its worker thread)."""
        if tokens <= 0:
            return
        sample = max(seconds - self.fixed_s, 0.0) / tokens
        with self._lock:
            known = self.per_token_s.get(threads)
            self.per_token_s[threads] = sample if known is None else known + SMOOTHING * (sample - known)

    def estimate(self, tokens: int, threads: int) -> float | None:
        """Expected seconds for a batch of `tokens`, None before anything was measured for `threads`."""
        per_token = self.per_token_s.get(threads)
        if per_token is None:
            per_token = next(iter(self.per_token_s.values()), None)  # another thread count: better than none
            if per_token is None:
                return None
        return self.fixed_s + per_token * tokens


@dataclass
class Running:
    """The batch a worker is computing: when it started, its cost in tokens, the threads it uses."""

    started: float
    tokens: int
    threads: int


def expected_free_at(running: list[Running], costs: ForwardCosts) -> float | None:
    """monotonic() time at which the first of the running batches should finish; None when unknown."""
    finishes = []
    for batch in running:
        seconds = costs.estimate(batch.tokens, batch.threads)
        if seconds is None:
            return None
        finishes.append(batch.started + seconds)
    return min(finishes, default=None)
