"""Service lifecycle: load -> warm up -> ready -> draining -> stopped (or failed)."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from typing import TYPE_CHECKING

from app.batching import Batcher, BatchPolicy, OutOfMemory
from app.core.config import Settings, padded_length
from app.errors import Draining, NotReady
from app.metrics import Metrics
from app.model.loader import LoadedModel, ModelLoadError, load_model

if TYPE_CHECKING:  # the runtime imports torch; importing this module should not
    from app.model.runtime import TextClassifier

log = logging.getLogger("app.service")


class State(enum.StrEnum):
    LOADING = "loading"
    WARMING = "warming"
    READY = "ready"
    DRAINING = "draining"
    STOPPED = "stopped"
    FAILED = "failed"


class Service:
    def __init__(self, settings: Settings, metrics: Metrics, loaded: LoadedModel | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.loaded = loaded
        self.state = State.LOADING
        self.error: str | None = None
        self.batcher: Batcher | None = None
        self._startup: asyncio.Task[None] | None = None

    # ---- lifecycle ---------------------------------------------------------------------
    def launch(self) -> None:
        """Load and warm up in the background so /health/live answers (and /health says 503) meanwhile."""
        self._startup = asyncio.create_task(self._start(), name="service-start")

    async def _start(self) -> None:
        try:
            if self.loaded is None:
                self.loaded = await asyncio.to_thread(load_model, self.settings)
            from app.model.runtime import TextClassifier

            classifier = TextClassifier(self.loaded)
            if self.state is State.LOADING:  # not if a drain began meanwhile
                self.state = State.WARMING
            await asyncio.to_thread(self.warm_up, classifier)
            batcher = Batcher(
                classifier,
                BatchPolicy(
                    max_batch_size=self.settings.max_batch_size,
                    max_batch_tokens=self.settings.max_batch_tokens,
                    max_wait_s=self.settings.max_wait_ms / 1000,
                    sort_window=max(self.settings.sort_window, self.settings.max_batch_size),
                    queue_capacity=self.settings.queue_capacity,
                    max_padding_ratio=self.settings.resolved_padding_ratio(self.loaded.device),
                    pad_multiple=classifier.pad_multiple,
                    workers=self.settings.resolved_inference_workers(self.loaded.device),
                    threads=self.settings.torch_threads,
                ),
                self.metrics,
                set_threads=_set_torch_threads,
            )
            await batcher.start()
        except Exception as exc:
            self.state = State.FAILED
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("model start-up failed: %s", self.error, exc_info=not _is_expected(exc))
            return
        self.batcher = batcher
        self.metrics.track_queue_depth(lambda: float(batcher.queued))
        src = self.loaded.source
        self.metrics.set_model(src.name, src.version, self.loaded.device, self.loaded.dtype)
        if self.state is State.WARMING:  # a drain may have begun while we warmed up
            self.state = State.READY
            log.info("ready: %s version %d on %s/%s", src.name, src.version, self.loaded.device, self.loaded.dtype)

    def warm_up(self, classifier: TextClassifier) -> None:
        """One short input, then one batch at the full token budget: a memory shortfall shows now.

        Also run on a version being swapped in (app/swap.py), beside the one serving.
        """
        _set_torch_threads(self.settings.torch_threads)
        started = time.perf_counter()
        short = classifier.tokenize(["warm-up"]).ids
        classifier.predict(classifier.collate(short))
        length = classifier.loaded.max_length
        count = max(1, min(self.settings.max_batch_size, self.settings.max_batch_tokens // padded_length(length)))
        try:
            classifier.predict(classifier.collate([classifier.sample_ids(length)] * count))
        except OutOfMemory as exc:
            raise ModelLoadError(
                f"warm-up ran out of device memory on a batch of {count} x {length} tokens: lower "
                "SENTIMENT_MAX_BATCH_TOKENS (or SENTIMENT_MAX_LENGTH), or use a smaller dtype"
            ) from exc
        log.info("warm-up done in %.2fs (largest batch %d x %d tokens)", time.perf_counter() - started, count, length)

    async def drain(self, timeout_s: float) -> bool:
        """Stop admitting and finish queued + in-flight work; False if the grace period ran out."""
        if self.state in (State.DRAINING, State.STOPPED):
            return True
        self.state = State.DRAINING
        if self.batcher is None:
            return True
        self.batcher.close()
        drained = await self.batcher.wait_idle(timeout_s)
        if drained:
            log.info("drained: every admitted request was answered")
        else:
            log.warning("drain timeout (%.1fs) passed with %d inputs still queued", timeout_s, self.batcher.queued)
            self.batcher.abandon(Draining("the server shut down before this request was processed"))
        return drained

    async def stop(self) -> None:
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()
        if self.batcher is not None:
            await self.batcher.stop()
        if self.state is not State.FAILED:
            self.state = State.STOPPED

    # ---- per request ---------------------------------------------------------------------
    def ready_batcher(self) -> Batcher:
        if self.state is State.READY and self.batcher is not None:
            return self.batcher
        if self.state in (State.DRAINING, State.STOPPED):
            raise Draining("the server is shutting down and accepts no new requests")
        raise NotReady(f"the model is not ready (state: {self.state})")


def _set_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _is_expected(exc: Exception) -> bool:
    return isinstance(exc, ModelLoadError)
