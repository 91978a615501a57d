"""Dynamic micro-batching: admission, batch formation, completion, model pinning across swaps.

The engine knows nothing about HTTP or torch. It drives any object with the `BatchModel` shape
(app/engine/contract.py): tokenize once per request (on the loop when short, else in a tokenizer
thread; `chunk`: a long text comes back as several windows), collate one batch while the previous
one computes, predict in one of the inference workers (app/engine/workers.py).

Policy (docs/architecture.md explains why):
- An idle worker takes whatever is queued at once. While every worker is busy, the next batch keeps
  filling until it is full or until just before a worker is expected to free up (measured forward
  costs, app/engine/costs.py; at most `max_wait_s` when set), then it is collated and handed over.
- A batch is bounded by `max_batch_size` inputs and `max_batch_tokens`: real tokens when the model
  runs packed batches (cut oldest first), padded ones (longest x count) otherwise, grown around the
  oldest input over a length-sorted window (app/engine/grouping.py). Either way the oldest input rides
  in the next batch: no input waits behind more than the inputs queued before it.
- Expired and abandoned requests are dropped before compute; a failing batch fails only its own requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from app.engine.admission import admit_windows
from app.engine.contract import BatchModel, BatchPolicy
from app.engine.costs import ForwardCosts, expected_free_at
from app.engine.grouping import batch_tokens, pick_batch
from app.engine.tickets import Item, Job, Ticket
from app.engine.workers import InferenceWorkers, name_os_thread
from app.errors import Cancelled, DeadlineExceeded, Draining, InferenceFailed, InputTooLong, QueueFull, ServiceError
from app.metrics import Metrics
from inference.tokens import Tokenized

log = logging.getLogger("app.engine")

# Cut the next batch this long (plus its collate time) before a worker should free up: the hand-over
# then finds it ready. A late cut only costs the loop's hand-over; an early one, inputs left behind.
CUT_MARGIN_S = 0.001
FALLBACK_WAIT_S = 0.005
# Requests of at most this many characters tokenize on the event loop. Measured (MiniLM's tokenizer): a
# ~100-character text takes ~40 us to encode, the hop to the tokenizer thread ~90 us of loop CPU; longer
# requests go to the thread so the loop never blocks for long (5,600 characters: 2.4 ms).
INLINE_TOKENIZE_CHARS = 512


class Batcher:
    def __init__(
        self,
        model: BatchModel,
        policy: BatchPolicy,
        metrics: Metrics | None = None,
        set_threads: Callable[[int], None] | None = None,
        costs: ForwardCosts | None = None,
    ) -> None:
        self._model = model
        self.policy = policy
        self._metrics = metrics
        self._queue: deque[Item] = deque()
        self._queued = 0  # live inputs in the queue (tombstones of dropped requests excluded)
        self._queued_tokens = 0
        self._reserved = 0  # inputs admitted but still being tokenized
        self._tokenizing: dict[int, int] = {}  # id(model) -> requests being tokenized by it
        self._inflight: dict[int, Job] = {}  # batches handed to the inference thread, not yet answered
        self._closed = False
        self._stopping = False
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._workers = InferenceWorkers(
            policy.workers, policy.threads, policy.pad_multiple, self._complete, set_threads, policy.packed, costs
        )
        self._collate_s = 0.0  # moving average of one collate, the lead a cut needs
        self._tokenizer_pool = ThreadPoolExecutor(
            1, thread_name_prefix="tokenize", initializer=name_os_thread, initargs=("tokenize",)
        )
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._workers.start(self._loop)
        self._task = asyncio.create_task(self._run(), name="batcher")

    def close(self) -> None:
        """Stop admitting; everything already admitted still gets answered."""
        self._closed = True

    async def wait_idle(self, grace_s: float) -> bool:
        """True once nothing is queued, being tokenized or computing; False on timeout."""
        try:
            async with asyncio.timeout(grace_s):
                while not self._is_idle():
                    self._idle.clear()
                    await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def abandon(self, error: ServiceError) -> None:
        """Answer everything admitted with `error` now (a forward already running still finishes)."""
        self._closed = True
        for ticket, _ in list(self._queue):
            self._fail(ticket, error)
        for job in list(self._inflight.values()):
            for ticket, _ in job.items:
                self._fail(ticket, error)
        self._queue.clear()

    async def stop(self) -> None:
        """Fail whatever is left (503 draining), then end the worker task and thread."""
        self._stopping = True
        self.abandon(Draining("the server shut down before this request was processed"))
        self._wakeup.set()
        if self._task is not None:
            await self._task
        await self._workers.stop()
        self._tokenizer_pool.shutdown(wait=False, cancel_futures=True)

    # ---- model swap --------------------------------------------------------------------
    @property
    def model(self) -> BatchModel:
        return self._model

    def set_model(self, model: BatchModel) -> None:
        """Requests admitted from now on run on `model`; those admitted before finish on their own model.

        A request is pinned to the model that tokenized it (vocabularies and token limits may differ
        between versions), and a batch only ever holds inputs of one model, so the switch falls
        between batches and every answer comes from exactly one model.
        """
        self._model = model
        self._wakeup.set()

    def uses(self, model: BatchModel) -> bool:
        """Whether any unanswered request is pinned to `model` (tokenizing, queued or computing)."""
        if self._tokenizing.get(id(model)):
            return True
        if any(job.model is model for job in self._inflight.values()):
            return True
        return any(ticket.model is model and not ticket.done for ticket, _ in self._queue)

    async def wait_released(self, model: BatchModel, timeout_s: float, poll_s: float = 0.01) -> bool:
        """True once no request uses `model` any more; False if that took longer than `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while self.uses(model):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(poll_s)
        return True

    # ---- admission ---------------------------------------------------------------------
    @property
    def queued(self) -> int:
        return self._queued

    @property
    def admitted(self) -> int:
        """Inputs holding a queue slot: queued, or still being tokenized (what capacity is checked against)."""
        return self._queued + self._reserved

    async def submit(
        self, texts: Sequence[str], deadline: float, reject_truncated: bool = False, max_windows: int | None = None
    ) -> Ticket:
        """Tokenize and queue one request; `max_windows` set: chunk mode (app/engine/admission.py)."""
        n = len(texts)
        if self._closed:
            raise Draining("the server is shutting down and accepts no new requests")
        if self._queued + self._reserved + n > self.policy.queue_capacity:
            raise QueueFull(
                f"queue full ({self._queued + self._reserved} of {self.policy.queue_capacity} inputs queued); "
                "retry later",
                retry_after_s=1,
            )
        assert self._loop is not None, "Batcher.start() was not awaited"
        model = self._model
        chunk = max_windows is not None
        if not chunk and sum(map(len, texts)) <= INLINE_TOKENIZE_CHARS:
            # Short requests tokenize on the loop: cheaper than the hop to the tokenizer thread.
            tok = self._tokenize(model, texts, False)
        else:
            self._reserved += n
            key = id(model)
            self._tokenizing[key] = self._tokenizing.get(key, 0) + 1
            try:
                tok = await self._loop.run_in_executor(self._tokenizer_pool, self._tokenize, model, texts, chunk)
            finally:
                self._reserved -= n
                if (left := self._tokenizing[key] - 1) > 0:
                    self._tokenizing[key] = left
                else:
                    del self._tokenizing[key]
                self._notify_idle()
        if reject_truncated and any(tok.truncated):
            first = tok.truncated.index(True)
            raise InputTooLong(f"text {first} is over the model's token limit and truncation is 'reject'")
        inputs = len(tok.ids)
        if max_windows is not None:
            admit_windows(inputs, n, max_windows, self._queued + self._reserved, self.policy.queue_capacity)
        if self._stopping:
            raise Draining("the server shut down before this request was processed")
        if time.monotonic() >= deadline:
            raise DeadlineExceeded("the request deadline passed during tokenization")
        ticket = Ticket(tok, deadline, self._loop.create_future(), model)
        self._queue.extend((ticket, i) for i in range(inputs))
        self._queued += inputs
        self._queued_tokens += ticket.queued_tokens
        self._wakeup.set()
        return ticket

    def _tokenize(self, model: BatchModel, texts: Sequence[str], chunk: bool) -> Tokenized:
        started = time.perf_counter()
        tok = model.tokenize(texts, chunk=True) if chunk else model.tokenize(texts)  # older models: no chunk
        if self._metrics is not None:
            self._metrics.tokenize_duration.observe(time.perf_counter() - started)
        return tok

    async def result(self, ticket: Ticket, disconnected: asyncio.Future[Any] | None = None) -> np.ndarray:
        """Logits of every input, or the typed error; gives up at the deadline or on disconnect."""
        waiters: set[asyncio.Future[Any]] = {ticket.future}
        if disconnected is not None:
            waiters.add(disconnected)
        done, _ = await asyncio.wait(
            waiters, timeout=max(0.0, ticket.deadline - time.monotonic()), return_when=asyncio.FIRST_COMPLETED
        )
        if ticket.future in done:
            return ticket.future.result()
        if disconnected is not None and disconnected in done:
            self.cancel(ticket, Cancelled("client disconnected"))
        else:
            self.cancel(ticket, DeadlineExceeded("deadline exceeded before the prediction was ready"))
        return ticket.future.result()  # raises the error just set

    def cancel(self, ticket: Ticket, error: ServiceError) -> None:
        self._fail(ticket, error)

    # ---- batch formation (event loop) ---------------------------------------------------------
    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            if self._stopping and self._queued == 0:
                return
            busy = len(self._inflight)
            if self._queued == 0 or busy > self.policy.workers:
                # Nothing to batch, or every worker computing and the next batch already handed over.
                await self._wakeup.wait()
                continue
            if busy == self.policy.workers and not self._full():
                wait = self._cut_at() - time.monotonic()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await self._wakeup.wait()
                    continue
            self._dispatch()

    def _cut_at(self) -> float:
        """When to cut the next batch while every worker computes: just before the first one should be
        free (measured costs, app/engine/costs.py), at most `max_wait_s` after its oldest input arrived."""
        limit = None if self.policy.max_wait_s is None else self._oldest_enqueued_at() + self.policy.max_wait_s
        free_at = expected_free_at(list(self._workers.running.values()), self._workers.costs)
        if free_at is None:
            # Nothing measured yet (or a worker between jobs): a short fill, as a fixed wait would do.
            return limit if limit is not None else self._oldest_enqueued_at() + FALLBACK_WAIT_S
        cut = free_at - self._collate_s - CUT_MARGIN_S
        return cut if limit is None else min(cut, limit)

    def _full(self) -> bool:
        p = self.policy
        return self._queued >= p.max_batch_size or self._queued_tokens >= p.max_batch_tokens

    def _oldest_enqueued_at(self) -> float:
        q = self._queue
        while q and q[0][0].done:
            q.popleft()
        return q[0][0].enqueued_at if q else time.monotonic()

    def _dispatch(self) -> None:
        items = self._cut()
        if not items:
            self._notify_idle()
            return
        ids = [t.ids[i] for t, i in items]
        lengths = [t.lengths[i] for t, i in items]
        real = sum(lengths)
        padded = batch_tokens(lengths, self.policy.packed, self.policy.pad_multiple)
        model = items[0][0].model
        started = time.perf_counter()
        try:
            batch = model.collate(ids)
        except Exception as exc:
            log.exception("collating a batch of %d failed", len(items))
            self._fail_items(items, exc)
            return
        self._collate_s += 0.1 * (time.perf_counter() - started - self._collate_s)
        job = Job(items, batch, padded, real, model)
        self._inflight[id(job)] = job
        self._workers.submit(job)

    def _cut(self) -> list[Item]:
        """Take the next batch off the queue (drops dead and expired requests on the way)."""
        p = self.policy
        q = self._queue
        now = time.monotonic()
        window: list[Item] = []
        limit = p.max_batch_size if p.packed else p.sort_window
        while q and len(window) < limit:
            item = q.popleft()
            ticket = item[0]
            if ticket.done:
                continue
            if now >= ticket.deadline:
                self._fail(ticket, DeadlineExceeded("deadline exceeded while queued"))
                continue
            window.append(item)
        window = [item for item in window if not item[0].done]  # a ticket may have expired mid-scan
        if not window:
            return []
        # One model per batch: around a swap, inputs pinned to the other model wait for the next one.
        model = window[0][0].model
        scanned = window
        window = [item for item in scanned if item[0].model is model]
        mixed = len(window) < len(scanned)
        picked = set(pick_batch([t.lengths[i] for t, i in window], p, shallow=not q and not mixed))
        chosen = [item for k, item in enumerate(window) if k in picked]
        rest = [item for k, item in enumerate(window) if k not in picked]
        if mixed:
            # Back in queue order, so the oldest input still rides in the next batch after the swap.
            taken = {id(item) for item in chosen}
            rest = [item for item in scanned if id(item) not in taken]
        q.extendleft(reversed(rest))
        metrics = self._metrics
        for ticket, i in chosen:
            ticket.queued -= 1
            ticket.queued_tokens -= ticket.lengths[i]
            self._queued -= 1
            self._queued_tokens -= ticket.lengths[i]
            if not ticket.started:
                ticket.started = True
                if metrics is not None:
                    metrics.queue_wait.observe(now - ticket.enqueued_at)
        return chosen

    # ---- completion (event loop) ---------------------------------------------------------
    def _complete(
        self, job: Job, logits: np.ndarray | None, error: BaseException | None, elapsed: float, expired: list[Ticket]
    ) -> None:
        self._inflight.pop(id(job), None)
        for ticket in expired:
            self._fail(ticket, DeadlineExceeded("deadline exceeded while queued"))
        if error is not None:
            log.error("a batch of %d inputs failed: %r", len(job.items), error, exc_info=error)
            self._fail_items(job.items, error)
        elif logits is not None:
            if self._metrics is not None:
                self._metrics.observe_batch(len(job.items), job.padded_tokens, job.real_tokens, elapsed)
            for (ticket, i), row in zip(job.items, logits, strict=True):
                if ticket.done:
                    continue
                if ticket.logits is None:
                    ticket.logits = np.empty((len(ticket.ids), logits.shape[1]), dtype=np.float32)
                ticket.logits[i] = row
                ticket.remaining -= 1
                if ticket.remaining == 0:
                    ticket.done = True
                    ticket.future.set_result(ticket.logits)
        self._wakeup.set()
        self._notify_idle()

    def _fail_items(self, items: list[Item], error: BaseException | None) -> None:
        message = f"inference failed for this batch: {type(error).__name__}"
        for ticket in {id(t): t for t, _ in items}.values():
            self._fail(ticket, InferenceFailed(message))

    def _fail(self, ticket: Ticket, error: ServiceError) -> None:
        if ticket.done:
            return
        ticket.done = True
        self._queued -= ticket.queued
        self._queued_tokens -= ticket.queued_tokens
        ticket.queued = ticket.queued_tokens = 0
        if not ticket.future.done():
            ticket.future.set_exception(error)
        self._notify_idle()

    def _is_idle(self) -> bool:
        return self._queued == 0 and self._reserved == 0 and not self._inflight

    def _notify_idle(self) -> None:
        if self._is_idle():
            self._idle.set()
