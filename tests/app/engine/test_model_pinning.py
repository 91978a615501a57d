"""The engine side of a model swap: requests pinned to their model, batches never mixing two models."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from app.engine.batcher import Batcher
from app.engine.contract import BatchPolicy
from inference.tokens import Tokenized
from tests.helpers.fakes import FakeModel, expected_logits

pytestmark = pytest.mark.anyio

FAR = 60.0


class NewModel(FakeModel):
    """Another version: same tokens, logits shifted so an answer shows which model computed it."""

    def predict(self, batch: list[list[int]]) -> np.ndarray:
        return super().predict(batch) + 1000.0


class SlowTokenizer(FakeModel):
    def __init__(self) -> None:
        super().__init__()
        self.tokenizing = threading.Event()
        self.release = threading.Event()

    def tokenize(self, texts: Sequence[str]) -> Tokenized:
        self.tokenizing.set()
        assert self.release.wait(10)
        return super().tokenize(texts)


async def submit(batcher: Batcher, texts: list[str]) -> asyncio.Future[np.ndarray]:
    ticket = await batcher.submit(texts, time.monotonic() + FAR)
    return asyncio.ensure_future(batcher.result(ticket))


async def test_admitted_requests_finish_on_their_model_and_batches_never_mix() -> None:
    old, new = FakeModel(), NewModel()
    batcher = Batcher(old, BatchPolicy(max_batch_size=16, max_wait_s=0.0))
    await batcher.start()
    old.gate.clear()
    hold = await submit(batcher, ["hold"])
    assert await asyncio.to_thread(old.started.wait, 5)
    prepared = await submit(batcher, ["prepared"])
    for _ in range(500):  # wait until it is handed over: now the device has a batch running and one waiting
        if old.collated == 2:
            break
        await asyncio.sleep(0.01)
    before = await submit(batcher, ["queued before", "the swap", "x"])  # stays queued behind both

    batcher.set_model(new)
    after = await submit(batcher, ["admitted after", "yy"])
    assert batcher.model is new and batcher.uses(old) and batcher.uses(new)
    old.gate.set()

    assert (await before).tolist() == [expected_logits(t) for t in ["queued before", "the swap", "x"]]
    shifted = [[x + 1000.0 for x in expected_logits(t)] for t in ["admitted after", "yy"]]
    assert (await after).tolist() == shifted
    await hold
    await prepared
    assert await batcher.wait_released(old, 5)
    assert not batcher.uses(old)
    assert old.collated == 3 and new.collated == 1  # one batch of each after the swap, not one mixed batch
    assert all(text not in {"admitted after", "yy"} for batch in old.batches for text in batch)
    assert sorted(text for batch in new.batches for text in batch) == ["admitted after", "yy"]
    await batcher.stop()


async def test_a_request_tokenizing_during_the_swap_stays_on_the_model_that_tokenized_it() -> None:
    old, new = SlowTokenizer(), NewModel()
    batcher = Batcher(old, BatchPolicy(max_wait_s=0.0))
    await batcher.start()
    # Long enough for the tokenizer thread (short requests tokenize on the loop, which no swap can interleave).
    text = "mid-swap " * 100
    pending = asyncio.create_task(submit(batcher, [text]))
    assert await asyncio.to_thread(old.tokenizing.wait, 5)
    batcher.set_model(new)
    assert batcher.uses(old)  # not queued yet, but its inputs are already in old's vocabulary
    released = asyncio.create_task(batcher.wait_released(old, 5))
    await asyncio.sleep(0.05)
    assert not released.done()
    old.release.set()
    assert (await (await pending)).tolist() == [expected_logits(text)]
    assert await released
    assert new.batches == []
    await batcher.stop()


async def test_waiting_for_a_model_that_never_drains_times_out() -> None:
    model = FakeModel()
    batcher = Batcher(model, BatchPolicy(max_wait_s=0.0))
    await batcher.start()
    model.gate.clear()
    held = await submit(batcher, ["stuck"])
    assert await asyncio.to_thread(model.started.wait, 5)
    batcher.set_model(NewModel())
    assert not await batcher.wait_released(model, 0.1)
    model.gate.set()
    await held
    assert await batcher.wait_released(model, 5)
    await batcher.stop()
