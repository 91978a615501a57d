"""The bounded record of recent answers that feedback refers to: request id -> what was answered.

Bounded three ways, oldest first: at most `max_inputs` answered inputs in all, none older than
`max_age_s`, and (only with feedback_store_text) at most TEXT_BUDGET characters of stored text. An id
that has left the record is unknown to /feedback (404 `prediction_not_found`). Texts are kept only when
the operator turned feedback_store_text on: by default the service remembers what it answered, not what
it was asked.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

TEXT_BUDGET = 32 << 20  # characters of stored text, at most (feedback_store_text only)


@dataclass(slots=True)
class Answered:
    """One /predict request: the version that answered, its labels, probabilities and (optionally) texts."""

    version: int
    model_name: str
    labels: tuple[str, ...]
    probs: np.ndarray  # [n, labels], temperature-calibrated
    predicted: list[int]
    texts: Sequence[str] | None
    at: float
    feedback: list[bool] = field(default_factory=list)  # per input: feedback received (or being stored)
    shadow_version: int | None = None
    shadow_predicted: list[int] | None = None  # per input, -1 where the shadow did not score it

    @property
    def size(self) -> int:
        return len(self.predicted)


class RecentAnswers:
    def __init__(self, max_inputs: int, max_age_s: float, clock: object = time.monotonic) -> None:
        self.max_inputs = max_inputs
        self.max_age_s = max_age_s
        self._clock = clock
        self._entries: OrderedDict[str, Answered] = OrderedDict()
        self.inputs = 0
        self.text_chars = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, request_id: str, answered: Answered) -> None:
        entries = self._entries
        old = entries.pop(request_id, None)  # a client reusing its own X-Request-ID: the newest wins
        if old is not None:
            self._forget(old)
        entries[request_id] = answered
        self.inputs += answered.size
        if answered.texts is not None:
            self.text_chars += sum(map(len, answered.texts))
        while self.inputs > self.max_inputs or self.text_chars > TEXT_BUDGET:
            self._forget(entries.popitem(last=False)[1])

    def get(self, request_id: str) -> Answered | None:
        """The answer, or None if it was never recorded, has been evicted or is older than max_age_s."""
        self.expire()
        return self._entries.get(request_id)

    def expire(self) -> None:
        oldest_allowed = self._clock() - self.max_age_s  # type: ignore[operator]
        entries = self._entries
        while entries:
            first = next(iter(entries.values()))
            if first.at >= oldest_allowed:
                return
            self._forget(entries.popitem(last=False)[1])

    def _forget(self, answered: Answered) -> None:
        self.inputs -= answered.size
        if answered.texts is not None:
            self.text_chars -= sum(map(len, answered.texts))
