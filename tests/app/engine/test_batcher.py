"""The batching engine against a fake model: policy, admission, failure isolation."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from app.engine.batcher import Batcher
from app.engine.contract import BatchPolicy
from app.engine.tickets import Ticket
from app.errors import Cancelled, DeadlineExceeded, Draining, InferenceFailed, InputTooLong, QueueFull
from app.metrics import Metrics
from inference.padding import padded_length
from tests.helpers.fakes import FakeModel, expected_logits

pytestmark = pytest.mark.anyio

FAR = 60.0  # a deadline no test reaches


async def started(model: FakeModel, policy: BatchPolicy, metrics: Metrics | None = None) -> Batcher:
    batcher = Batcher(model, policy, metrics)
    await batcher.start()
    return batcher


async def submit(batcher: Batcher, texts: list[str], within_s: float = FAR) -> Ticket:
    return await batcher.submit(texts, time.monotonic() + within_s)


async def hold_device(batcher: Batcher, model: FakeModel) -> Ticket:
    """Occupy the device with one blocked batch so later submissions queue up behind it."""
    model.gate.clear()
    model.started.clear()
    ticket = await submit(batcher, ["hold"])
    assert await asyncio.to_thread(model.started.wait, 5)
    return ticket


def assert_answers(texts: list[str], logits: np.ndarray) -> None:
    assert logits.tolist() == [expected_logits(t) for t in texts]


async def test_answers_arrive_in_request_order(fake_model: FakeModel) -> None:
    batcher = await started(fake_model, BatchPolicy(max_batch_size=3))
    texts = [f"text number {i}" * (i % 4 + 1) for i in range(10)]
    tickets = [await submit(batcher, texts[i : i + 5]) for i in (0, 5)]
    results = [await batcher.result(t) for t in tickets]
    assert_answers(texts[:5], results[0])
    assert_answers(texts[5:], results[1])
    await batcher.stop()


async def test_idle_device_starts_at_once(fake_model: FakeModel) -> None:
    # A huge max_wait must not delay a lone request on an idle device.
    batcher = await started(fake_model, BatchPolicy(max_wait_s=30.0))
    began = time.monotonic()
    assert_answers(["alone"], await batcher.result(await submit(batcher, ["alone"])))
    assert time.monotonic() - began < 2.0
    await batcher.stop()


async def test_busy_device_lets_the_next_batch_fill_for_max_wait(fake_model: FakeModel) -> None:
    batcher = await started(fake_model, BatchPolicy(max_wait_s=0.5, max_batch_size=8))
    held = await hold_device(batcher, fake_model)
    assert fake_model.collated == 1
    waiting = await submit(batcher, ["queued"])
    await asyncio.sleep(0.1)
    assert fake_model.collated == 1  # still filling: neither full nor past max_wait
    await asyncio.sleep(0.8)
    assert fake_model.collated == 2  # handed over (prepared) while the device is still busy
    fake_model.gate.set()
    await batcher.result(held)
    assert_answers(["queued"], await batcher.result(waiting))
    await batcher.stop()


async def test_full_batch_is_prepared_without_waiting(fake_model: FakeModel) -> None:
    batcher = await started(fake_model, BatchPolicy(max_wait_s=30.0, max_batch_size=4))
    held = await hold_device(batcher, fake_model)
    waiting = await submit(batcher, ["a", "b", "c", "d"])
    for _ in range(100):
        if fake_model.collated == 2:
            break
        await asyncio.sleep(0.01)
    assert fake_model.collated == 2
    fake_model.gate.set()
    await batcher.result(held)
    assert_answers(["a", "b", "c", "d"], await batcher.result(waiting))
    await batcher.stop()


async def test_token_budget_and_batch_size_are_respected(fake_model: FakeModel) -> None:
    policy = BatchPolicy(max_batch_size=6, max_batch_tokens=96, max_wait_s=0.0)
    batcher = await started(fake_model, policy)
    held = await hold_device(batcher, fake_model)
    rng = np.random.default_rng(0)
    texts = ["x" * int(n) for n in rng.integers(1, 40, size=60)]
    tickets = [await submit(batcher, texts[i : i + 3]) for i in range(0, 60, 3)]
    fake_model.gate.set()
    await batcher.result(held)
    for i, ticket in enumerate(tickets):
        assert_answers(texts[3 * i : 3 * i + 3], await batcher.result(ticket))
    for batch in fake_model.batches:
        assert len(batch) <= policy.max_batch_size
        assert padded_length(max(map(len, batch))) * len(batch) <= policy.max_batch_tokens
    await batcher.stop()


async def test_similar_lengths_are_grouped(fake_model: FakeModel) -> None:
    policy = BatchPolicy(max_batch_size=8, max_batch_tokens=100_000, max_wait_s=0.0, sort_window=64)
    batcher = await started(fake_model, policy)
    held = await hold_device(batcher, fake_model)
    texts = ["s" * 4 if i % 2 else "L" * 120 for i in range(32)]  # short and long interleaved
    tickets = [await submit(batcher, [t]) for t in texts]
    fake_model.gate.set()
    await batcher.result(held)
    for ticket, text in zip(tickets, texts, strict=True):
        assert_answers([text], await batcher.result(ticket))
    batches = fake_model.batches[1:]
    assert all(len({len(t) for t in batch}) == 1 for batch in batches), batches
    padded = sum(padded_length(max(map(len, b))) * len(b) for b in batches)
    fifo = sum(padded_length(max(map(len, texts[i : i + 8]))) * 8 for i in range(0, 32, 8))
    assert padded < 0.6 * fifo
    await batcher.stop()


async def test_oldest_input_always_rides_in_the_next_batch(fake_model: FakeModel) -> None:
    # A long input queued first among many short ones is not pushed back by better-packing shorts.
    policy = BatchPolicy(max_batch_size=4, max_batch_tokens=10_000, max_wait_s=0.0, sort_window=64)
    batcher = await started(fake_model, policy)
    held = await hold_device(batcher, fake_model)
    old = await submit(batcher, ["O" * 200])
    shorts = [await submit(batcher, ["s" * 3]) for _ in range(40)]
    fake_model.gate.set()
    await batcher.result(held)
    assert_answers(["O" * 200], await batcher.result(old))
    for ticket in shorts:
        await batcher.result(ticket)
    assert "O" * 200 in fake_model.batches[1]
    await batcher.stop()


async def test_no_input_starves_under_a_stream_of_better_fitting_inputs(fake_model: FakeModel) -> None:
    policy = BatchPolicy(max_batch_size=2, max_batch_tokens=10_000, max_wait_s=0.0, sort_window=16)
    batcher = await started(fake_model, policy)
    held = await hold_device(batcher, fake_model)
    first_shorts = [await submit(batcher, ["s" * 3]) for _ in range(6)]
    long = await submit(batcher, ["L" * 300])
    fake_model.gate.set()
    await batcher.result(held)
    # Keep feeding better-fitting short inputs while the long one waits: the oldest input always
    # rides in the next batch, so it is served right after the last input queued before it, long
    # before the stream of 30 later shorts (15 batches) runs dry.
    late = [await submit(batcher, ["t" * 3]) for _ in range(30)]
    assert_answers(["L" * 300], await batcher.result(long))
    for ticket in first_shorts + late:
        await batcher.result(ticket)
    batches = fake_model.batches
    served_at = next(i for i, b in enumerate(batches) if "L" * 300 in b)
    last_older = max(i for i, b in enumerate(batches) if "s" * 3 in b)
    assert served_at <= last_older + 1, [[t[:3] for t in b] for b in batches]
    assert served_at <= 1 + len(first_shorts), [[t[:3] for t in b] for b in batches]
    await batcher.stop()


async def test_expired_requests_are_dropped_before_compute(fake_model: FakeModel) -> None:
    metrics = Metrics()
    batcher = await started(fake_model, BatchPolicy(max_wait_s=0.0), metrics)
    held = await hold_device(batcher, fake_model)
    doomed = await submit(batcher, ["doomed"], within_s=0.05)
    kept = await submit(batcher, ["kept"])
    await asyncio.sleep(0.1)
    fake_model.gate.set()
    with pytest.raises(DeadlineExceeded):
        await batcher.result(doomed)
    assert_answers(["kept"], await batcher.result(kept))
    await batcher.result(held)
    assert all("doomed" not in batch for batch in fake_model.batches)
    await batcher.stop()


async def test_waiting_past_the_deadline_raises_504(fake_model: FakeModel) -> None:
    batcher = await started(fake_model, BatchPolicy())
    held = await hold_device(batcher, fake_model)
    ticket = await submit(batcher, ["slow"], within_s=0.05)
    with pytest.raises(DeadlineExceeded) as err:
        await batcher.result(ticket)
    assert err.value.status_code == 504
    fake_model.gate.set()
    await batcher.result(held)
    await batcher.stop()


async def test_disconnected_clients_are_dropped_before_compute(fake_model: FakeModel) -> None:
    batcher = await started(fake_model, BatchPolicy(max_wait_s=0.0))
    held = await hold_device(batcher, fake_model)
    gone = await submit(batcher, ["gone", "also gone"])
    disconnected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiter = asyncio.ensure_future(batcher.result(gone, disconnected))
    await asyncio.sleep(0.01)
    disconnected.set_result(None)
    with pytest.raises(Cancelled):
        await waiter
    assert batcher.queued == 0  # its inputs no longer count against the queue
    stay = await submit(batcher, ["stay"])
    fake_model.gate.set()
    assert_answers(["stay"], await batcher.result(stay))
    await batcher.result(held)
    assert all("gone" not in batch and "also gone" not in batch for batch in fake_model.batches)
    await batcher.stop()


async def test_a_failing_batch_fails_only_its_requests(fake_model: FakeModel) -> None:
    batcher = await started(fake_model, BatchPolicy(max_batch_size=2, max_wait_s=0.0, sort_window=2))
    held = await hold_device(batcher, fake_model)
    bad = await submit(batcher, ["boom!", "neighbour"])  # one batch of two
    good = [await submit(batcher, [f"fine {i}", f"ok {i}"]) for i in range(3)]
    fake_model.gate.set()
    await batcher.result(held)
    with pytest.raises(InferenceFailed) as err:
        await batcher.result(bad)
    assert err.value.status_code == 503
    for i, ticket in enumerate(good):
        assert_answers([f"fine {i}", f"ok {i}"], await batcher.result(ticket))
    after = await submit(batcher, ["still serving"])
    assert_answers(["still serving"], await batcher.result(after))
    await batcher.stop()


async def test_out_of_memory_splits_the_batch_and_retries_halves() -> None:
    model = FakeModel(oom_above=2)
    batcher = await started(model, BatchPolicy(max_batch_size=8, max_wait_s=0.0))
    held = await hold_device(batcher, model)
    texts = [f"t{i}" * (i + 1) for i in range(8)]
    ticket = await submit(batcher, texts)
    model.gate.set()
    await batcher.result(held)
    assert_answers(texts, await batcher.result(ticket))
    assert all(len(b) <= 2 for b in model.batches)
    await batcher.stop()


async def test_queue_full_rejects_at_once(fake_model: FakeModel) -> None:
    batcher = await started(fake_model, BatchPolicy(queue_capacity=4, max_wait_s=30.0, max_batch_size=8))
    held = await hold_device(batcher, fake_model)
    queued = await submit(batcher, ["a", "b", "c"])
    assert batcher.queued == 3
    with pytest.raises(QueueFull) as err:
        await submit(batcher, ["d", "e"])
    assert err.value.status_code == 429 and err.value.headers["Retry-After"] == "1"
    fits = await submit(batcher, ["d"])
    fake_model.gate.set()
    await batcher.result(held)
    assert_answers(["a", "b", "c"], await batcher.result(queued))
    assert_answers(["d"], await batcher.result(fits))
    await batcher.stop()


async def test_truncated_inputs_can_be_refused() -> None:
    model = FakeModel(max_length=5)
    batcher = await started(model, BatchPolicy())
    with pytest.raises(InputTooLong):
        await batcher.submit(["short", "far too long"], time.monotonic() + FAR, reject_truncated=True)
    ticket = await batcher.submit(["short", "far too long"], time.monotonic() + FAR)
    assert ticket.truncated == [False, True]
    assert_answers(["short", "far t"], await batcher.result(ticket))
    await batcher.stop()


async def test_drain_finishes_admitted_work_and_refuses_new(fake_model: FakeModel) -> None:
    batcher = await started(fake_model, BatchPolicy(max_wait_s=0.0))
    held = await hold_device(batcher, fake_model)
    queued = await submit(batcher, ["queued"])
    batcher.close()
    with pytest.raises(Draining):
        await submit(batcher, ["late"])
    assert not await batcher.wait_idle(0.05)
    fake_model.gate.set()
    assert await batcher.wait_idle(5)
    await batcher.result(held)
    assert_answers(["queued"], await batcher.result(queued))
    await batcher.stop()


async def test_stop_answers_everything_left_with_draining(fake_model: FakeModel) -> None:
    batcher = await started(fake_model, BatchPolicy(max_wait_s=30.0, max_batch_size=8))
    held = await hold_device(batcher, fake_model)
    queued = await submit(batcher, ["never computed"])
    stopping = asyncio.ensure_future(batcher.stop())
    await asyncio.sleep(0.05)
    for ticket in (held, queued):  # answered at once, not after the running forward pass
        with pytest.raises(Draining):
            await batcher.result(ticket)
    fake_model.gate.set()
    await stopping
    assert all("never computed" not in batch for batch in fake_model.batches)


async def test_batch_metrics_are_recorded(fake_model: FakeModel) -> None:
    metrics = Metrics()
    batcher = await started(fake_model, BatchPolicy(), metrics)
    await batcher.result(await submit(batcher, ["abc", "abcdefghij"]))
    await batcher.stop()
    value = metrics.registry.get_sample_value
    assert value("sentiment_inputs_total") == 2
    assert value("sentiment_real_tokens_total") == 13
    assert value("sentiment_padded_tokens_total") == 2 * padded_length(10)
    assert value("sentiment_batch_size_count") == 1
    assert value("sentiment_tokenize_duration_seconds_count") == 1
    assert value("sentiment_queue_wait_seconds_count") == 1


class CountingModel(FakeModel):
    """Records how many forward passes run at once and the thread count each pass was given."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.running = self.most_running = 0
        self.threads_by_text: dict[str, int] = {}
        self.local = threading.local()

    def set_threads(self, n: int) -> None:
        self.local.threads = n

    def predict(self, batch: list[list[int]]) -> np.ndarray:
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        for ids in batch:
            self.threads_by_text["".join(map(chr, ids))] = getattr(self.local, "threads", 0)
        try:
            return super().predict(batch)
        finally:
            with self.lock:
                self.running -= 1


async def test_workers_compute_batches_side_by_side_and_share_the_threads() -> None:
    model = CountingModel()
    policy = BatchPolicy(max_wait_s=0.0, workers=2, threads=4)
    batcher = Batcher(model, policy, set_threads=model.set_threads)
    await batcher.start()
    alone = await submit(batcher, ["alone"])  # nothing else computing: all 4 threads
    assert_answers(["alone"], await batcher.result(alone))
    held = await hold_device(batcher, model)  # computing alone as well, blocked on the gate
    model.started.clear()
    second = await submit(batcher, ["second"])
    assert await asyncio.to_thread(model.started.wait, 5)  # started while the first still computes
    assert model.running == 2
    model.gate.set()
    assert_answers(["second"], await batcher.result(second))
    await batcher.result(held)
    assert model.most_running == 2
    assert model.threads_by_text == {"alone": 4, "hold": 4, "second": 2}
    await batcher.stop()


async def test_one_worker_never_overlaps_forward_passes() -> None:
    model = CountingModel()
    batcher = Batcher(model, BatchPolicy(max_wait_s=0.0, max_batch_size=1), set_threads=model.set_threads)
    await batcher.start()
    tickets = [await submit(batcher, [f"text {i}"]) for i in range(6)]
    for ticket in tickets:
        await batcher.result(ticket)
    assert model.most_running == 1
    assert set(model.threads_by_text.values()) == {0}  # threads=0: the batcher leaves them alone
    await batcher.stop()
