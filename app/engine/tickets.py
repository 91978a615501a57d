"""What the engine tracks per request (Ticket) and per batch handed to a worker (Job)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from inference.tokens import Tokenized


class Ticket:
    """One admitted request: its inputs (one per text, or per window in chunk mode), where their logits
    go, and how it ends."""

    __slots__ = (
        "deadline",
        "done",
        "enqueued_at",
        "future",
        "ids",
        "lengths",
        "logits",
        "model",
        "queued",
        "queued_tokens",
        "remaining",
        "started",
        "truncated",
        "windows",
    )

    def __init__(self, tok: Tokenized, deadline: float, future: asyncio.Future[np.ndarray], model: Any = None) -> None:
        # The model that tokenized this request; every batch holding its inputs runs on it (model swaps).
        self.model = model
        self.ids = tok.ids
        self.lengths = tok.lengths
        self.truncated = tok.truncated
        self.windows = tok.windows  # chunk mode: inputs per text (a long text is several windows)
        self.deadline = deadline
        self.future = future
        self.remaining = self.queued = len(tok.ids)
        self.queued_tokens = sum(tok.lengths)
        self.logits: np.ndarray | None = None
        self.done = False
        self.started = False
        self.enqueued_at = time.monotonic()


# One input of a ticket: (ticket, index of the input in the request).
Item = tuple[Ticket, int]


@dataclass(slots=True)
class Job:
    """A collated batch on its way to (or inside) an inference worker."""

    items: list[Item]
    batch: Any
    padded_tokens: int
    real_tokens: int
    model: Any  # the BatchModel this batch runs on (its tickets' model)
