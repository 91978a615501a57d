"""Zero-downtime model swap: load beside, verify, warm up, switch between batches, release the old.

Steps (one swap at a time; a second one gets 409 `swap_in_progress` at once):

1. resolve the target (a number, an alias or `latest`) in the store; the active version: nothing to do;
2. estimate the memory the new version needs beside the active one and refuse if it does not fit
   (inference/memory.py);
3. verify, load and warm up at the full token budget, in threads, while the active version keeps serving;
   then the canary gate: the version's canary set through the serving path must reproduce its published
   answers (app/quality/canary.py), else 422 `canary_failed`;
4. activate (app/lifecycle/registry.py): requests admitted from now on run on the new version,
   requests already admitted finish on the version that tokenized them (a batch never mixes
   versions), so every answer names the version that really produced it;
5. release: wait until nothing uses the old version any more, drop it and return cached device memory.

A failure in 1-3 (canary included) leaves the active version serving and the service ready; the caller gets a typed
error, the log a line and `sentiment_model_swaps_total{outcome}` a count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from app.errors import (
    CanaryFailed,
    InsufficientMemory,
    ModelInvalid,
    ModelNotFound,
    ServiceError,
    StoreCorrupt,
    SwapInProgress,
)
from app.lifecycle.gc_control import collect_released
from app.quality.canary import CanaryRefused
from inference.errors import ModelLoadError
from inference.loader import LoadedModel
from inference.memory import MemoryEstimate, MemoryProbe, available_bytes, check_fits, estimate
from store.errors import CorruptStoreFile, StoreError
from store.errors import ModelNotFound as StoreModelNotFound
from store.model_store import ModelVersion

if TYPE_CHECKING:
    from app.engine.batcher import Batcher
    from app.lifecycle.service import Service
    from inference.classifier import TextClassifier

log = logging.getLogger("app.lifecycle")

# sentiment_model_swaps_total{outcome}
SUCCESS, UNCHANGED, NOT_FOUND, INVALID, WARMUP_FAILED, NO_MEMORY, BUSY, CANARY, STORE_CORRUPT = (
    "success",
    "unchanged",
    "not_found",
    "invalid",
    "warmup_failed",
    "insufficient_memory",
    "in_progress",
    "canary_failed",
    "store_corrupt",
)


class ModelSwapper:
    def __init__(self, service: Service, probe: MemoryProbe = available_bytes) -> None:
        self._service = service
        self.probe = probe
        self._lock = asyncio.Lock()
        # Called with the version a swap activated (app/lifecycle/shadow.py ends a shadow of that version).
        self.after_activate: Callable[[int], Awaitable[None]] | None = None

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    @property
    def lock(self) -> asyncio.Lock:
        """Held by whatever loads a version beside the active one (a swap, a shadow candidate): one at a time."""
        return self._lock

    async def swap(self, target: str | int, trigger: str = "admin") -> dict[str, Any]:
        """Move to `target`; returns what happened, raises a typed ServiceError if it did not."""
        if self._lock.locked():
            self._count(BUSY)
            raise SwapInProgress("another model swap is in progress; retry when it has finished")
        async with self._lock:
            return await self._swap(str(target).strip(), trigger)

    async def _swap(self, target: str, trigger: str) -> dict[str, Any]:
        service = self._service
        batcher = service.ready_batcher()  # 503 not_ready / draining: no swap while starting or stopping
        current = service.loaded
        assert current is not None
        started = time.perf_counter()
        found = self._resolve(target)
        base = {"name": current.source.name, "target": target, "trigger": trigger}
        if found.version == current.source.version:
            self._count(UNCHANGED)
            return {**base, "outcome": UNCHANGED, "model": _ref(current), "previous": _ref(current)}
        need = self._check_memory(found, current, target)
        classifier = await self._load(found, target)
        loaded_s = time.perf_counter() - started
        await self._warm_up(classifier, found, target)
        try:
            report = await service.check_canary(classifier, "swap")
        except CanaryRefused as exc:
            message = f"version {found.version} failed its canary ({exc.report.reason})"
            raise self._failed(CANARY, CanaryFailed, message, target) from exc
        service.ready_batcher()  # a drain may have begun meanwhile: then keep what serves
        service.quality.track(classifier.loaded.source, report)
        previous = service.active.activate(classifier)
        assert previous is not None
        self._count(SUCCESS)
        switched_s = time.perf_counter() - started
        log.info(
            "model swap (%s): %s version %d -> %d in %.2fs (load %.2fs), estimated extra memory %.0f MiB",
            trigger,
            found.name,
            current.source.version,
            found.version,
            switched_s,
            loaded_s,
            need.total_bytes / (1 << 20),
        )
        answer = {
            **base,
            "outcome": SUCCESS,
            "model": _ref(classifier.loaded),
            "previous": _ref(current),
            "switched_after_s": round(switched_s, 3),
            "estimated_memory_bytes": need.total_bytes,
            "canary": report.describe(),
        }
        if self.after_activate is not None:
            await self.after_activate(found.version)
        # This frame must hold no reference to the old version while it is released.
        release = self._release(batcher, previous, current.source.version, current.device)
        del current, previous, classifier
        answer["previous_released"] = await release
        return answer

    # ---- steps ---------------------------------------------------------------------------
    def _resolve(self, target: str) -> ModelVersion:
        service = self._service
        name = service.settings.name
        try:
            return service.store.resolve(name, target)
        except StoreModelNotFound as exc:
            raise self._failed(NOT_FOUND, ModelNotFound, str(exc), target) from exc
        except CorruptStoreFile as exc:
            # Not the client's mistake and not a missing version: the message names the file, why and the fix.
            raise self._failed(STORE_CORRUPT, StoreCorrupt, str(exc), target) from exc
        except (StoreError, ValueError, OSError) as exc:
            message = f"cannot resolve {name!r} version {target!r}: {exc}"
            raise self._failed(NOT_FOUND, ModelNotFound, message, target) from exc

    def _check_memory(self, found: ModelVersion, current: LoadedModel, target: str) -> MemoryEstimate:
        s = self._service.settings
        try:
            need = estimate(
                found.path, current.device, current.dtype, s.max_batch_tokens, s.max_batch_size, s.max_length
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            message = f"version {found.version} cannot be read ({type(exc).__name__}: {exc})"
            raise self._failed(INVALID, ModelInvalid, message, target) from exc
        problem = check_fits(need, current.device, self.probe)
        if problem is not None:
            raise self._failed(NO_MEMORY, InsufficientMemory, f"version {found.version} refused: {problem}", target)
        return need

    async def _load(self, found: ModelVersion, target: str) -> TextClassifier:
        # The number, not the target: an alias moving meanwhile must not change what is verified and loaded.
        try:
            loaded = await asyncio.to_thread(self._service.load, found.version)
        except ModelLoadError as exc:
            message = f"version {found.version} cannot be served: {exc}"
            raise self._failed(INVALID, ModelInvalid, message, target) from exc
        except Exception as exc:  # a loader bug must not take the serving version down
            message = f"version {found.version} failed to load ({type(exc).__name__}: {exc})"
            raise self._failed(INVALID, ModelInvalid, message, target, exc) from exc
        from inference.classifier import TextClassifier

        return TextClassifier(loaded)

    async def _warm_up(self, classifier: TextClassifier, found: ModelVersion, target: str) -> None:
        try:
            await asyncio.to_thread(self._service.warm_up, classifier)
        except Exception as exc:
            message = f"version {found.version} failed its warm-up ({type(exc).__name__}: {exc})"
            error = exc if not isinstance(exc, ModelLoadError) else None
            raise self._failed(WARMUP_FAILED, ModelInvalid, message, target, error) from exc

    async def _release(self, batcher: Batcher, previous: TextClassifier, version: int, device: str) -> bool:
        """Requests pinned to the old version finish within their deadline; the wait is bounded so the
        answer comes back. Every reference goes before cached device memory is returned."""
        drained = await batcher.wait_released(previous, self._service.settings.request_timeout_s + 1)
        del previous
        collect_released(self._service.settings.gc_freeze, drained)
        if drained:
            from inference.precision import release_cached_memory

            release_cached_memory(device)
            log.info("released version %d: every request pinned to it was answered", version)
        else:
            log.warning("version %d still has requests after the wait; freed when they finish", version)
        return drained

    # ---- outcomes ------------------------------------------------------------------------
    def _failed(
        self, outcome: str, kind: type[ServiceError], message: str, target: str, exc: BaseException | None = None
    ) -> ServiceError:
        self._count(outcome)
        loaded = self._service.loaded
        serving = f"version {loaded.source.version}" if loaded is not None else "nothing"
        error = kind(f"{message}; still serving {serving}")
        log.error("model swap to %r failed (%s): %s", target, outcome, error.message, exc_info=exc)
        return error

    def _count(self, outcome: str) -> None:
        self._service.metrics.model_swaps.labels(outcome=outcome).inc()


def _ref(loaded: LoadedModel) -> dict[str, Any]:
    return {"name": loaded.source.name, "version": loaded.source.version}
