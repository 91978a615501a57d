"""Chunk mode in the batching engine: a long text's windows are inputs like any other."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.engine.admission import admit_windows
from app.engine.batcher import Batcher
from app.engine.contract import BatchPolicy
from app.errors import QueueFull, TooManyWindows
from tests.helpers.fakes import FakeModel, expected_logits, fake_windows

pytestmark = pytest.mark.anyio

FAR = 60.0


async def started(model: FakeModel, policy: BatchPolicy) -> Batcher:
    batcher = Batcher(model, policy)
    await batcher.start()
    return batcher


async def test_windows_are_queued_scored_and_answered_as_inputs() -> None:
    model = FakeModel(max_length=4)
    batcher = await started(model, BatchPolicy(max_batch_size=64))
    texts = ["abcdefghij", "xy"]  # 3 windows + 1
    ticket = await batcher.submit(texts, time.monotonic() + FAR, max_windows=10)
    assert ticket.windows == [3, 1] and ticket.truncated == [False, False]
    logits = await batcher.result(ticket)
    windows = [w for t in texts for w in fake_windows(t, 4)]
    assert logits.tolist() == [expected_logits(w) for w in windows]
    assert sorted(w for batch in model.batches for w in batch) == sorted(windows)
    await batcher.stop()


async def test_windows_share_batches_with_other_requests() -> None:
    model = FakeModel(max_length=4)
    batcher = await started(model, BatchPolicy(max_batch_size=64, max_wait_s=1.0))
    model.gate.clear()
    model.started.clear()
    held = await batcher.submit(["hold"], time.monotonic() + FAR)
    assert await asyncio.to_thread(model.started.wait, 5)
    chunked = await batcher.submit(["abcdefgh"], time.monotonic() + FAR, max_windows=10)
    plain = await batcher.submit(["plain text"], time.monotonic() + FAR)
    assert batcher.queued == 3  # two windows and one text
    model.gate.set()
    for ticket in (held, chunked, plain):
        await batcher.result(ticket)
    assert ["abcd", "efgh", "plai"] in [sorted(batch) for batch in model.batches]
    await batcher.stop()


async def test_windows_count_against_the_token_budget() -> None:
    model = FakeModel(max_length=8)
    batcher = await started(model, BatchPolicy(max_batch_size=64, max_batch_tokens=16, sort_window=64))
    ticket = await batcher.submit(["x" * 40], time.monotonic() + FAR, max_windows=10)
    assert (await batcher.result(ticket)).shape == (5, 2)
    assert all(sum(len(w) for w in batch) <= 16 for batch in model.batches)
    assert len(model.batches) >= 3
    await batcher.stop()


async def test_too_many_windows_is_refused_before_queueing() -> None:
    model = FakeModel(max_length=4)
    batcher = await started(model, BatchPolicy())
    with pytest.raises(TooManyWindows, match="9 windows"):
        await batcher.submit(["a" * 36], time.monotonic() + FAR, max_windows=8)
    assert batcher.admitted == 0 and model.batches == []
    await batcher.stop()


async def test_windows_must_fit_the_queue() -> None:
    model = FakeModel(max_length=4)
    batcher = await started(model, BatchPolicy(queue_capacity=5))
    with pytest.raises(QueueFull, match="6 windows"):
        await batcher.submit(["a" * 24], time.monotonic() + FAR, max_windows=100)  # 1 text, 6 windows
    assert batcher.admitted == 0
    fits = await batcher.submit(["a" * 20], time.monotonic() + FAR, max_windows=100)  # 5 windows
    assert (await batcher.result(fits)).shape == (5, 2)
    await batcher.stop()


def test_admission_rules() -> None:
    admit_windows(inputs=3, texts=3, max_windows=3, admitted=10, capacity=10)  # did not grow: slots were reserved
    admit_windows(inputs=5, texts=2, max_windows=5, admitted=5, capacity=10)
    with pytest.raises(QueueFull):
        admit_windows(inputs=6, texts=2, max_windows=6, admitted=5, capacity=10)
    with pytest.raises(TooManyWindows):
        admit_windows(inputs=6, texts=2, max_windows=5, admitted=0, capacity=100)
