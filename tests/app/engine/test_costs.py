"""Measured forward costs, and the batcher cutting the next batch just before the device frees up."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.engine.batcher import Batcher
from app.engine.contract import BatchPolicy
from app.engine.costs import ForwardCosts, Running, expected_free_at
from app.engine.grouping import take_in_order
from tests.helpers.fakes import FakeModel

pytestmark = pytest.mark.anyio


def test_costs_are_seeded_then_follow_what_batches_take() -> None:
    costs = ForwardCosts()
    assert costs.estimate(100, threads=2) is None  # nothing measured: no guess
    costs.seed(0.004, 0.0001, threads=2)
    assert costs.estimate(100, threads=2) == pytest.approx(0.014)
    assert costs.estimate(100, threads=1) == pytest.approx(0.014)  # another thread count: the known one
    for _ in range(200):  # the machine got twice as slow per token
        costs.observe(0.004 + 0.0002 * 100, tokens=100, threads=2)
    assert costs.estimate(100, threads=2) == pytest.approx(0.024, rel=0.01)
    costs.observe(0.010, tokens=50, threads=1)  # first sample for one thread: taken as it is
    assert costs.per_token_s[1] == pytest.approx(0.006 / 50)


def test_the_first_running_batch_to_finish_decides() -> None:
    costs = ForwardCosts()
    costs.seed(0.0, 0.001, threads=1)
    running = [Running(started=10.0, tokens=500, threads=1), Running(started=10.2, tokens=100, threads=1)]
    assert expected_free_at(running, costs) == pytest.approx(10.3)
    assert expected_free_at([], costs) is None


def test_packed_batches_take_inputs_in_arrival_order_within_the_budget() -> None:
    assert take_in_order([5, 500, 5, 5], max_size=64, max_tokens=510) == 3  # the fourth would pass the budget
    assert take_in_order([700, 5], max_size=64, max_tokens=600) == 1  # one input over budget still goes alone
    assert take_in_order([5] * 10, max_size=4, max_tokens=10_000) == 4


async def _batches_after_a_long_one(policy: BatchPolicy, busy_s: float) -> list[list[str]]:
    """A batch holds the device for `busy_s` while two requests arrive; what did the next batch hold?"""
    model = FakeModel()
    costs = ForwardCosts()
    costs.seed(0.0, busy_s / len("hold"), threads=0)  # so the running batch is expected to take busy_s
    batcher = Batcher(model, policy, costs=costs)
    await batcher.start()
    model.gate.clear()
    hold = await batcher.submit(["hold"], time.monotonic() + 30)
    assert await asyncio.to_thread(model.started.wait, 5)
    first = await batcher.submit(["early"], time.monotonic() + 30)
    await asyncio.sleep(busy_s / 3)
    second = await batcher.submit(["later"], time.monotonic() + 30)
    await asyncio.sleep(busy_s / 2)
    model.gate.set()
    for ticket in (hold, first, second):
        await batcher.result(ticket)
    await batcher.stop()
    return model.batches


async def test_while_the_device_is_busy_the_next_batch_fills_until_it_is_about_to_free_up() -> None:
    batches = await _batches_after_a_long_one(BatchPolicy(workers=1, max_wait_s=None), busy_s=0.6)
    assert batches == [["hold"], ["early", "later"]]


async def test_a_max_wait_caps_the_fill() -> None:
    batches = await _batches_after_a_long_one(BatchPolicy(workers=1, max_wait_s=0.01), busy_s=0.6)
    assert batches == [["hold"], ["early"], ["later"]]
