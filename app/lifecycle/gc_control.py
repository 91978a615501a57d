"""The cyclic garbage collector: its pauses measured, and the objects alive after warm-up kept out of its way.

A full (generation 2) collection traverses every tracked object while holding the GIL: the event loop,
the tokenizer and the inference threads' Python code all stop. After start-up the process holds a few
hundred thousand long-lived objects (torch, transformers, the model's modules, FastAPI), and a burst
allocates enough to trigger full collections that walk all of them again and again. `gc.freeze()` after
warm-up moves the survivors into a permanent generation that collections skip; measured numbers are in
docs/operations.md ("Recovery after a burst").

Frozen objects are still freed by reference counting, but a frozen reference cycle is never collected:
a model swap therefore unfreezes, collects (freeing the released version's cycles) and freezes again.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from prometheus_client import Histogram

log = logging.getLogger("app.lifecycle")


def freeze_survivors() -> int:
    """Collect, then freeze everything still alive; returns the number of frozen objects."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("gc: %d objects frozen out of the collector's reach in %.0f ms", frozen, 1e3 * _since(started))
    return frozen


def refreeze() -> int:
    """After a model swap released a version: let the collector see the frozen objects once, so the old
    version's reference cycles are freed, then freeze the survivors (the new version) again."""
    gc.unfreeze()
    return freeze_survivors()


def collect_released(freeze: bool, released: bool) -> None:
    """After a model swap let go of the old version: freeze (the `gc_freeze` setting) or not, and whether
    every request pinned to it was answered (`released`). A version still in use is not frozen again: its
    cycles would then stay for good; the collector's defaults apply until the next swap."""
    if not freeze:
        gc.collect()
    elif released:
        refreeze()
    else:
        gc.unfreeze()
        gc.collect()


def _since(started: float) -> float:
    return time.perf_counter() - started


class GcPauses:
    """Every collection's duration into `histogram` (labelled by generation), through gc.callbacks.

    gc.callbacks is process-wide: install once per app run (the lifespan), remove at its end."""

    def __init__(self, histogram: Histogram) -> None:
        self._children = [histogram.labels(generation=str(g)) for g in range(3)]
        self._started = 0.0

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def remove(self) -> None:
        while self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        # A collection runs in one thread holding the GIL, so start and stop pair up without a lock.
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._children[info["generation"]].observe(time.perf_counter() - self._started)
