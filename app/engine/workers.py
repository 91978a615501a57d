"""Inference worker threads: each takes one prepared batch at a time and runs its forward pass.

With several workers, forward passes run side by side (each with its own torch threads): on a CPU,
small batches on one thread each waste less than one batch split across threads that wait for each
other at every operator. A batch computing alone gets all threads, so a lone client's latency is
unchanged. Results go back to the event loop; a failing batch never ends a worker, and
`OutOfMemory` splits the batch in halves and retries them.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from app.engine.costs import ForwardCosts, Running
from app.engine.grouping import batch_tokens
from app.engine.tickets import Item, Job, Ticket
from inference.errors import OutOfMemory

log = logging.getLogger("app.engine")

# (job, logits or None, error or None, seconds in the worker, tickets found expired) -> None, on the loop.
Complete = Callable[[Job, np.ndarray | None, BaseException | None, float, list[Ticket]], None]


def name_os_thread(name: str) -> None:
    """Give the calling thread an OS-visible name (top -H, /proc/<pid>/task/*/comm; 15 bytes at most).

    Threads a worker starts inherit the name, so torch's intra-op threads show under their worker:
    operators (and bench/run.py) can tell event-loop, tokenizer and forward-pass CPU apart.
    """
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME (Linux)
    except (OSError, AttributeError):
        pass  # not Linux: a cosmetic loss only


class InferenceWorkers:
    def __init__(
        self,
        count: int,
        threads: int,
        pad_multiple: int,
        complete: Complete,
        set_threads: Callable[[int], None] | None = None,
        packed: bool = False,
        costs: ForwardCosts | None = None,
    ) -> None:
        self._packed = packed
        self.costs = costs or ForwardCosts()
        self.running: dict[int, Running] = {}  # worker index -> the batch it computes now
        self.count = count
        # Threads a forward pass may use when it computes alone (0: leave the model's setting); while
        # others compute too, each uses threads // count, so the cores are shared, not oversubscribed.
        self._threads = threads
        self._pad_multiple = pad_multiple
        self._complete = complete
        self._set_threads = set_threads  # sets the calling thread's intra-op thread count
        self._computing = 0  # workers inside a forward pass
        self._computing_lock = threading.Lock()
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads_started: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for k in range(self.count):
            thread = threading.Thread(target=self._run, args=(k,), name=f"inference-{k}", daemon=True)
            thread.start()
            self._threads_started.append(thread)

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    async def stop(self) -> None:
        for _ in self._threads_started:
            self._jobs.put(None)
        for thread in self._threads_started:
            await asyncio.to_thread(thread.join, 30)

    def _run(self, index: int) -> None:
        assert self._loop is not None
        name_os_thread(threading.current_thread().name)
        threads = 0
        while (job := self._jobs.get()) is not None:
            started = time.perf_counter()
            expired: list[Ticket] = []
            logits: np.ndarray | None = None
            error: BaseException | None = None
            with self._computing_lock:
                self._computing += 1
                alone = self._computing == 1
            try:
                threads = self._use_threads(threads, alone)
                expired = self._drop_dead(job)
                if job.items:
                    self.running[index] = Running(time.monotonic(), job.padded_tokens, threads)
                    forward_started = time.perf_counter()
                    logits = self._forward(job.model, job.items, job.batch)
                    self.costs.observe(time.perf_counter() - forward_started, job.padded_tokens, threads)
            except Exception as exc:  # a failing batch must not end the worker
                error = exc
            finally:
                self.running.pop(index, None)
                with self._computing_lock:
                    self._computing -= 1
            elapsed = time.perf_counter() - started
            try:
                self._loop.call_soon_threadsafe(self._complete, job, logits, error, elapsed, expired)
            except RuntimeError:  # loop closed under us: nobody is waiting any more
                return
            # Waiting for the next job, this frame would still hold the last one, and through it its model:
            # after a swap the old version stayed alive until every worker had run a batch of the new one.
            del job, logits, error, expired

    def _use_threads(self, current: int, alone: bool) -> int:
        """All threads for a batch computing alone (a lone client's latency), a share otherwise."""
        if self._set_threads is None or self._threads < 1:
            return current
        wanted = self._threads if alone else max(1, self._threads // self.count)
        if wanted != current:
            self._set_threads(wanted)
        return wanted

    def _drop_dead(self, job: Job) -> list[Ticket]:
        """A batch prepared while the device was busy may hold requests that expired or left since."""
        now = time.monotonic()
        live = [item for item in job.items if not item[0].done and item[0].deadline > now]
        if len(live) == len(job.items):
            return []
        expired = list({id(t): t for t, _ in job.items if not t.done and t.deadline <= now}.values())
        job.items = live
        if live:
            ids = [t.ids[i] for t, i in live]
            job.batch = job.model.collate(ids)
            job.real_tokens = sum(map(len, ids))
            job.padded_tokens = batch_tokens([len(x) for x in ids], self._packed, self._pad_multiple)
        return expired

    def _forward(self, model: Any, items: list[Item], batch: Any) -> np.ndarray:
        try:
            logits = model.predict(batch)
        except OutOfMemory:
            if len(items) < 2:
                raise
            half = len(items) // 2
            log.warning("out of memory on a batch of %d inputs: retrying it as two halves", len(items))
            parts = []
            for part in (items[:half], items[half:]):
                parts.append(self._forward(model, part, model.collate([t.ids[i] for t, i in part])))
            return np.concatenate(parts)
        if not isinstance(logits, np.ndarray) or logits.ndim != 2 or logits.shape[0] != len(items):
            raise RuntimeError(f"model returned {getattr(logits, 'shape', type(logits))} for {len(items)} inputs")
        return logits
