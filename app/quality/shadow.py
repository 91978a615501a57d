"""Shadow scoring: a candidate version scores a share of live traffic in one thread, off the response path.

The predict route only offers an answered request (`offer`: a random draw and a non-blocking put into a
bounded queue, after the answer is computed); the response never waits for the shadow. One thread
tokenizes with the candidate's own tokenizer and runs its forward passes (up to SHADOW_BATCH inputs at a
time, on one torch thread), then hands the labels back to the event loop, which counts agreement with the
active version and keeps them with the answer for feedback.

The cap: the shadow may use at most `max_busy` of the service process's CPU time (default 0.05). A
token bucket refills with max_busy x the process's CPU seconds (the shadow's own included) and each
forward pass spends its thread CPU time; when the bucket is empty the thread waits. So however busy the
host is, the shadow takes at most that share of what the service gets, and when the active version is
CPU-bound it slows it by about that share. The bucket holds at most BURST_CPU_S, so idle time does not
save up credit for a burst later. What arrives while the shadow waits stays in its queue, and beyond
`queue_size` requests it is dropped and counted (`sentiment_shadow_inputs_total{outcome="dropped"}`):
the shadow falls behind, never the active version. Measured overhead: docs/operations.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from app.quality.metrics import QualityMetrics
from app.quality.recent import Answered

if TYPE_CHECKING:
    from inference.classifier import TextClassifier

log = logging.getLogger("app.quality")

# Inputs per shadow forward pass: small, so each slice is short and the cap holds over a fraction of a
# second, not minutes (a batch of 32 MiniLM inputs on one busy core takes seconds).
SHADOW_BATCH = 8
BURST_CPU_S = 0.25  # the most CPU the bucket saves up
_POLL_S = 0.02

Offer = tuple[Answered, Sequence[str]]


class ShadowScorer:
    def __init__(
        self,
        classifier: TextClassifier,
        share: float,
        max_busy: float,
        queue_size: int,
        metrics: QualityMetrics,
        set_threads: Callable[[int], None] | None = None,
    ) -> None:
        self.classifier = classifier
        self.version = classifier.loaded.source.version
        self.share = share
        self.max_busy = max_busy
        self.started_at = time.time()
        self._queue: queue.Queue[Offer | None] = queue.Queue(maxsize=queue_size)
        self._set_threads = set_threads
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._random = random.random
        candidate = str(self.version)
        self._metrics = metrics
        # Children resolved once: .labels() costs more than the increment.
        self._scored = metrics.shadow_inputs.labels(candidate=candidate, outcome="scored")
        self._dropped = metrics.shadow_inputs.labels(candidate=candidate, outcome="dropped")
        self._failed = metrics.shadow_inputs.labels(candidate=candidate, outcome="failed")
        self._agreed = metrics.shadow_agreements.labels(candidate=candidate)
        self._busy = metrics.shadow_busy.labels(candidate=candidate)
        for model in ("candidate", "active"):
            for outcome in ("correct", "incorrect"):
                metrics.shadow_feedback.labels(candidate=candidate, model=model, outcome=outcome)
        self.counts = {"offered": 0, "scored": 0, "dropped": 0, "failed": 0, "agreed": 0}
        self.busy_s = 0.0
        self._tokens = 0.0  # the CPU budget (seconds), shadow thread only
        self._process_cpu = 0.0

    # ---- event loop ----------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name=f"shadow-{self.version}", daemon=True)
        self._thread.start()

    def offer(self, answered: Answered, texts: Sequence[str]) -> None:
        """Hot path: maybe queue this answered request for the candidate; never blocks."""
        if self._random() >= self.share:
            return
        self.counts["offered"] += len(texts)
        try:
            self._queue.put_nowait((answered, texts))
        except queue.Full:
            self.counts["dropped"] += len(texts)
            self._dropped.inc(len(texts))

    async def stop(self) -> None:
        self._stop.set()
        while True:  # make room for the sentinel; what is queued is dropped with the shadow
            try:
                self._queue.put_nowait(None)
                break
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 30)

    def _done(self, batch: list[Offer], labels: list[int] | None, busy: float) -> None:
        n = sum(len(texts) for _, texts in batch)
        self.busy_s += busy
        self._busy.inc(busy)
        if labels is None:
            self.counts["failed"] += n
            self._failed.inc(n)
            return
        agreed = 0
        start = 0
        for answered, texts in batch:
            mine = labels[start : start + len(texts)]
            start += len(texts)
            answered.shadow_version = self.version
            answered.shadow_predicted = mine
            agreed += sum(a == b for a, b in zip(mine, answered.predicted, strict=True))
        self.counts["scored"] += n
        self.counts["agreed"] += agreed
        self._scored.inc(n)
        self._agreed.inc(agreed)

    def describe(self) -> dict[str, Any]:
        scored = self.counts["scored"]
        return {
            "version": self.version,
            "share": self.share,
            "max_busy": self.max_busy,
            "started_at": self.started_at,
            "inputs": dict(self.counts),
            "agreement": round(self.counts["agreed"] / scored, 6) if scored else None,
            "busy_seconds": round(self.busy_s, 3),
            "queued_requests": self._queue.qsize(),
        }

    # ---- the shadow thread ---------------------------------------------------------------
    def _run(self) -> None:
        assert self._loop is not None
        if self._set_threads is not None:
            self._set_threads(1)  # one core at most, and only max_busy of the service's CPU
        self._tokens, self._process_cpu = 0.0, time.process_time()
        while not self._stop.is_set():
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            size = len(item[1])
            while size < SHADOW_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._stop.set()
                    break
                batch.append(more)
                size += len(more[1])
            try:
                labels, busy = self._score([t for _, texts in batch for t in texts])
            except _Stopping:
                return
            try:
                self._loop.call_soon_threadsafe(self._done, batch, labels, busy)
            except RuntimeError:  # the loop is gone: nobody reads the result
                return

    def _wait_for_budget(self) -> bool:
        """Block until the bucket holds CPU time again; False when stopping."""
        while True:
            now = time.process_time()
            self._tokens = min(BURST_CPU_S, self._tokens + self.max_busy * (now - self._process_cpu))
            self._process_cpu = now
            if self._tokens > 0:
                return True
            if self._stop.wait(_POLL_S):
                return False

    def _score(self, texts: list[str]) -> tuple[list[int] | None, float]:
        """Labels (None if the candidate failed) and the CPU seconds spent; one budgeted slice per chunk."""
        c = self.classifier
        out = []
        busy = 0.0
        try:
            for start in range(0, len(texts), SHADOW_BATCH):
                if not self._wait_for_budget():
                    raise _Stopping
                # CPU time of this thread (torch runs one intra-op thread here, in this thread): what the
                # shadow takes from the active version, which wall time would overstate on a busy machine.
                begun = time.thread_time()
                tok = c.tokenize(texts[start : start + SHADOW_BATCH])
                out.append(np.asarray(c.predict(c.collate(tok.ids))).argmax(axis=1))
                spent = time.thread_time() - begun
                self._tokens -= spent
                busy += spent
            return np.concatenate(out).tolist(), busy
        except _Stopping:
            raise
        except Exception as exc:  # a failing candidate must not take anything else down
            log.warning("shadow version %d failed to score %d inputs: %r", self.version, len(texts), exc)
            return None, busy


class _Stopping(Exception):
    """The shadow was stopped while waiting for its CPU budget."""
