"""Service lifecycle: load -> warm up -> ready -> draining -> stopped (or failed)."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from typing import TYPE_CHECKING

from app.config import Settings
from app.engine.batcher import Batcher
from app.engine.contract import BatchPolicy
from app.engine.costs import ForwardCosts
from app.errors import Draining, NotReady
from app.lifecycle.gc_control import freeze_survivors
from app.lifecycle.registry import ActiveModel, layout
from app.metrics import Metrics
from app.quality.canary import CanaryRefused, canary_gate
from app.quality.metrics import QualityMetrics
from app.quality.monitor import QualityMonitor
from inference.canary import CanaryReport
from inference.errors import ModelLoadError, OutOfMemory
from inference.loader import LoadedModel, load_model
from inference.padding import padded_length
from store.model_store import ModelStore

if TYPE_CHECKING:  # the classifier imports torch; importing this module should not
    from inference.classifier import TextClassifier

log = logging.getLogger("app.lifecycle")


def load_configured(settings: Settings, version: str | int | None = None) -> LoadedModel:
    """Verify and load the configured model (or another version of it): blocking, call it in a thread."""
    ref = settings.version if version is None else version
    return load_model(ModelStore(settings.models_dir), settings.name, ref, settings.load_options())


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
        self.store = ModelStore(settings.models_dir)
        self.active = ActiveModel(metrics)
        self.quality = QualityMonitor(settings, QualityMetrics(metrics.registry))
        self.state = State.LOADING
        self.error: str | None = None
        self.exit_code = 1  # for sentiment-serve when start-up fails; 2: the model must not be served
        self.batcher: Batcher | None = None
        self._preloaded = loaded
        self._startup: asyncio.Task[None] | None = None

    @property
    def loaded(self) -> LoadedModel | None:
        return self.active.loaded

    def load(self, version: str | int | None = None) -> LoadedModel:
        return load_configured(self.settings, version)

    # ---- lifecycle ---------------------------------------------------------------------
    def launch(self) -> None:
        """Load and warm up in the background so /health/live answers (and /health says 503) meanwhile."""
        self._startup = asyncio.create_task(self._start(), name="service-start")

    async def _start(self) -> None:
        try:
            loaded = self._preloaded or await asyncio.to_thread(self.load)
            self._preloaded = None
            from inference.classifier import TextClassifier

            classifier = TextClassifier(loaded)
            self.active.activate(classifier)
            if self.state is State.LOADING:  # not if a drain began meanwhile
                self.state = State.WARMING
            costs = await asyncio.to_thread(self.warm_up, classifier)
            report = await self.check_canary(classifier, "start")
            self.quality.track(loaded.source, report)
            batcher = Batcher(
                classifier, self._policy(classifier), self.metrics, set_threads=_set_torch_threads, costs=costs
            )
            await batcher.start()
        except CanaryRefused as exc:
            self.state = State.FAILED
            self.exit_code = 2
            self.error = f"refusing to serve version {exc.report.version}: its canary failed: {exc.report.reason}"
            log.error("model start-up failed: %s", self.error)
            return
        except Exception as exc:
            self.state = State.FAILED
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("model start-up failed: %s", self.error, exc_info=not isinstance(exc, ModelLoadError))
            return
        self.batcher = batcher
        self.active.attach(batcher)
        self.metrics.track_queue_depth(lambda: float(batcher.queued))
        self.metrics.track_forward_costs(
            lambda: costs.fixed_s, {t: (lambda t=t: costs.per_token_s.get(t, 0.0)) for t in costs.per_token_s}
        )
        if loaded.device.startswith("cuda"):
            from inference.memory import gpu_memory_readers

            self.metrics.track_gpu_memory(*gpu_memory_readers(loaded.device))
        if self.settings.gc_freeze:
            # Before READY: the collection this takes stalls the loop once now, not under load.
            freeze_survivors()
        if self.state is State.WARMING:  # a drain may have begun while we warmed up
            self.state = State.READY
            src = loaded.source
            log.info(
                "ready: %s version %d on %s/%s, %s batches",
                src.name,
                src.version,
                loaded.device,
                loaded.dtype,
                layout(loaded),
            )

    def _policy(self, classifier: TextClassifier) -> BatchPolicy:
        s = self.settings
        device = classifier.loaded.device
        return BatchPolicy(
            max_batch_size=s.max_batch_size,
            max_batch_tokens=s.max_batch_tokens,
            max_wait_s=None if s.max_wait_ms is None else s.max_wait_ms / 1000,
            sort_window=max(s.sort_window, s.max_batch_size),
            queue_capacity=s.queue_capacity,
            max_padding_ratio=s.resolved_padding_ratio(device),
            pad_multiple=classifier.pad_multiple,
            packed=classifier.packed,
            workers=s.resolved_inference_workers(device),
            threads=s.torch_threads,
        )

    async def check_canary(self, classifier: TextClassifier, stage: str) -> CanaryReport:
        """The canary gate (app/quality/canary.py) through this service's batching policy; CanaryRefused when
        it fails and SENTIMENT_CANARY_GATE is enforce."""
        enforce = self.settings.canary_gate == "enforce"
        policy = self._policy(classifier)
        return await canary_gate(classifier, policy, stage, self.quality.metrics, enforce, _set_torch_threads)

    def warm_up(self, classifier: TextClassifier) -> ForwardCosts:
        """One short input, then one batch at the full token budget: a memory shortfall shows now. Then the
        forward's fixed and per-token costs are timed, for the batcher's cut timing (app/engine/costs.py).

        Also run on a version being swapped in (app/lifecycle/swap.py), beside the one serving.
        """
        threads = self.settings.torch_threads
        _set_torch_threads(threads)
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
        costs = measure_costs(classifier, threads, self.settings.resolved_inference_workers(classifier.loaded.device))
        _set_torch_threads(threads)
        log.info(
            "warm-up done in %.2fs (largest batch %d x %d tokens); forward: %.2f ms fixed + %s",
            time.perf_counter() - started,
            count,
            length,
            costs.fixed_s * 1000,
            ", ".join(f"{s * 1e6:.1f} us/token at {t} threads" for t, s in sorted(costs.per_token_s.items())),
        )
        return costs

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


def measure_costs(classifier: TextClassifier, threads: int, workers: int, repeats: int = 3) -> ForwardCosts:
    """Fixed cost (one short input) and per-token cost (a batch of ~1,000 tokens), best of `repeats`, at
    all threads and, when workers share them, at each worker's share."""
    costs = ForwardCosts()
    short = classifier.collate(classifier.tokenize(["warm-up"]).ids)
    width = min(32, classifier.loaded.max_length)
    batch = classifier.collate([classifier.sample_ids(width)] * 32)

    def best(batch: object) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            classifier.predict(batch)
            times.append(time.perf_counter() - started)
        return min(times)

    for count in sorted({threads, max(1, threads // workers)}, reverse=True):
        _set_torch_threads(count)
        fixed = best(short)
        costs.seed(fixed if count == threads else costs.fixed_s, (best(batch) - fixed) / (32 * width), count)
    return costs


def _set_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
