"""Load a candidate version beside the active one and let it score live traffic (app/quality/shadow.py).

Steps, under the swap lock (a swap and a shadow load never run together: both need memory for a second
version): resolve the target; refuse the active version itself; the swap's memory check
(inference/memory.py); verify + load + warm up in threads; labels must equal the active version's (else
agreement means nothing); the canary gate; then the scorer starts. A new candidate replaces the old one
(which is released first, so its memory counts as free). A swap that activates the candidate ends its
shadow; `DELETE /v1/models/shadow` ends it by hand; so does shutdown.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import TYPE_CHECKING, Any

from app.errors import (
    CanaryFailed,
    InsufficientMemory,
    ModelInvalid,
    ModelNotFound,
    ShadowConflict,
    ShadowNotRunning,
    SwapInProgress,
)
from app.quality.canary import CanaryRefused
from app.quality.shadow import ShadowScorer
from inference.errors import ModelLoadError
from inference.memory import check_fits, estimate
from store.errors import StoreError

if TYPE_CHECKING:
    from app.lifecycle.service import Service
    from app.lifecycle.swap import ModelSwapper
    from inference.classifier import TextClassifier
    from store.model_store import ModelVersion

log = logging.getLogger("app.lifecycle")


class ShadowManager:
    def __init__(self, service: Service, swapper: ModelSwapper) -> None:
        self._service = service
        self._swapper = swapper
        swapper.after_activate = self.activated  # a swap that activates the candidate ends its shadow

    @property
    def scorer(self) -> ShadowScorer | None:
        return self._service.quality.shadow

    def describe(self) -> dict[str, Any] | None:
        scorer = self.scorer
        return scorer.describe() if scorer is not None else None

    async def start(self, target: str | int, share: float | None = None) -> dict[str, Any]:
        if self._swapper.busy:
            raise SwapInProgress("a model swap or shadow load is in progress; retry when it has finished")
        async with self._swapper.lock:
            return await self._start(str(target).strip(), share)

    async def _start(self, target: str, share: float | None) -> dict[str, Any]:
        service = self._service
        service.ready_batcher()
        current = service.loaded
        assert current is not None
        try:
            found = service.store.resolve(service.settings.name, target)
        except (StoreError, ValueError, OSError) as exc:
            raise ModelNotFound(f"cannot resolve {service.settings.name!r} version {target!r}: {exc}") from exc
        if found.version == current.source.version:
            raise ShadowConflict(f"version {found.version} is the active version: shadow another one")
        replaced = self.scorer.version if self.scorer is not None else None
        await self.stop(quiet=True)  # its memory is free for the new candidate
        self._check_memory(found)
        classifier = await self._load(found)
        if classifier.loaded.source.labels != current.source.labels:
            raise ModelInvalid(
                f"version {found.version} has labels {classifier.loaded.source.labels}, the active version "
                f"{current.source.labels}: agreement between them would mean nothing"
            )
        try:
            report = await service.check_canary(classifier, "shadow")
        except CanaryRefused as exc:
            raise CanaryFailed(
                f"version {found.version} failed its canary ({exc.report.reason}); not shadowed"
            ) from exc
        s = service.settings
        scorer = ShadowScorer(
            classifier,
            share if share is not None else s.shadow_share,
            s.shadow_max_busy,
            s.shadow_queue,
            service.quality.metrics,
            _set_one_thread,
        )
        service.quality.track(classifier.loaded.source, report, active=False)
        scorer.start(asyncio.get_running_loop())
        service.quality.shadow = scorer
        service.quality.metrics.shadow_info.labels(candidate=str(found.version)).set(1)
        log.info(
            "shadow: version %d scores %.0f%% of requests beside version %d (at most %.0f%% of the service CPU)",
            found.version,
            scorer.share * 100,
            current.source.version,
            s.shadow_max_busy * 100,
        )
        return {"outcome": "started", "shadow": scorer.describe(), "replaced": replaced, "canary": report.describe()}

    def _check_memory(self, found: ModelVersion) -> None:
        s = self._service.settings
        current = self._service.loaded
        assert current is not None
        try:
            need = estimate(
                found.path, current.device, current.dtype, s.max_batch_tokens, s.max_batch_size, s.max_length
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelInvalid(f"version {found.version} cannot be read ({type(exc).__name__}: {exc})") from exc
        problem = check_fits(need, current.device, self._swapper.probe)
        if problem is not None:
            raise InsufficientMemory(f"version {found.version} not shadowed: {problem}")

    async def _load(self, found: ModelVersion) -> TextClassifier:
        service = self._service
        try:
            loaded = await asyncio.to_thread(service.load, found.version)
            from inference.classifier import TextClassifier

            classifier = TextClassifier(loaded)
            await asyncio.to_thread(service.warm_up, classifier)
        except ModelLoadError as exc:
            raise ModelInvalid(f"version {found.version} cannot be served: {exc}") from exc
        except Exception as exc:  # a loader bug must not take the serving version down
            log.error("shadow load of version %d failed", found.version, exc_info=exc)
            raise ModelInvalid(f"version {found.version} failed to load ({type(exc).__name__}: {exc})") from exc
        return classifier

    async def stop(self, quiet: bool = False) -> dict[str, Any]:
        """End the shadow and release the candidate; ShadowNotRunning when there is none (unless quiet)."""
        quality = self._service.quality
        scorer = quality.shadow
        if scorer is None:
            if quiet:
                return {}
            raise ShadowNotRunning("no shadow candidate is running")
        quality.shadow = None  # no new offers from now on
        await scorer.stop()
        quality.metrics.shadow_info.remove(str(scorer.version))
        summary = scorer.describe()
        device = scorer.classifier.loaded.device
        del scorer
        gc.collect()
        from inference.precision import release_cached_memory

        release_cached_memory(device)
        log.info("shadow of version %d stopped: %s", summary["version"], summary["inputs"])
        return {"outcome": "stopped", "shadow": summary}

    async def activated(self, version: int) -> None:
        """A swap made `version` active: if it was the candidate, its shadow has nothing left to compare."""
        if self.scorer is not None and self.scorer.version == version:
            await self.stop(quiet=True)


def _set_one_thread(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
