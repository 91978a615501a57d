"""The record of recent answers feedback refers to (app/quality/recent.py): bounded by inputs, age, text."""

from __future__ import annotations

import numpy as np

from app.quality import recent
from app.quality.recent import Answered, RecentAnswers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def answered(n: int, at: float, texts: list[str] | None = None) -> Answered:
    return Answered(1, "sentiment", ("negative", "positive"), np.full((n, 2), 0.5), [0] * n, texts, at, [False] * n)


def test_oldest_requests_go_first_when_inputs_pass_the_bound() -> None:
    clock = Clock()
    record = RecentAnswers(max_inputs=5, max_age_s=60, clock=clock)
    record.add("a", answered(2, clock.now))
    record.add("b", answered(2, clock.now))
    record.add("c", answered(2, clock.now))
    assert record.get("a") is None and record.get("b") is not None and record.inputs == 4


def test_answers_older_than_the_window_expire() -> None:
    clock = Clock()
    record = RecentAnswers(max_inputs=100, max_age_s=60, clock=clock)
    record.add("old", answered(1, clock.now))
    clock.now += 30
    record.add("new", answered(1, clock.now))
    clock.now += 31
    assert record.get("old") is None and record.get("new") is not None
    assert len(record) == 1 and record.inputs == 1


def test_a_reused_request_id_keeps_the_newest_answer() -> None:
    record = RecentAnswers(max_inputs=100, max_age_s=60, clock=Clock())
    record.add("id", answered(3, 100.0))
    record.add("id", answered(1, 100.0))
    assert record.inputs == 1 and record.get("id").size == 1  # type: ignore[union-attr]


def test_stored_texts_have_a_budget(monkeypatch: object) -> None:
    monkeypatch.setattr(recent, "TEXT_BUDGET", 10)  # type: ignore[attr-defined]
    record = RecentAnswers(max_inputs=100, max_age_s=60, clock=Clock())
    record.add("a", answered(1, 100.0, ["123456"]))
    record.add("b", answered(1, 100.0, ["abcdef"]))
    assert record.get("a") is None and record.text_chars == 6
