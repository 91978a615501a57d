"""After a burst: collector pauses are measured, start-up survivors are frozen out of the collector's way
(and a swap still frees the old version), freed C-heap memory is returned once the service is quiet."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.lifecycle import heap_trim
from app.lifecycle.gc_control import GcPauses, freeze_survivors, refreeze
from app.lifecycle.heap_trim import GROWTH_BYTES, HeapTrimmer
from app.metrics import Metrics

ADMIN = {"Authorization": "Bearer admin-key"}


class Cycle:
    def __init__(self) -> None:
        self.me = self  # reference counting alone never frees it


def test_collector_pauses_are_recorded_by_generation() -> None:
    metrics = Metrics()
    pauses = GcPauses(metrics.gc_pause)
    pauses.install()
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        pauses.remove()
    gc.collect(2)  # not recorded any more
    text = metrics.render().decode()
    assert 'sentiment_gc_pause_seconds_count{generation="2"} 1.0' in text
    assert float(text.split('sentiment_gc_pause_seconds_count{generation="0"} ')[1].split()[0]) >= 1


def test_a_frozen_cycle_is_freed_only_by_refreeze() -> None:
    obj = Cycle()
    ref = weakref.ref(obj)
    assert freeze_survivors() > 0
    del obj
    gc.collect()
    assert ref() is not None, "frozen: the collector does not see it"
    refreeze()  # what a swap does after releasing the old version
    assert ref() is None
    assert gc.get_freeze_count() > 0


def test_a_swap_with_a_frozen_collector_frees_the_old_version(
    swap_store: Path, make_client: Callable[..., Any]
) -> None:
    client = make_client(models_dir=swap_store, version="1", admin_api_key="admin-key", gc_freeze=True)
    service = client.app.state.service
    assert gc.get_freeze_count() > 0, "frozen after warm-up"
    old = weakref.ref(service.active.classifier)
    assert client.post("/predict", json={"text": "fine"}).status_code == 200
    swapped = client.post("/v1/models/reload", json={"version": 2}, headers=ADMIN)
    assert swapped.status_code == 200 and swapped.json()["previous_released"] is True
    assert old() is None, "the old version outlived its release"
    assert gc.get_freeze_count() > 0, "frozen again after the swap"
    assert client.post("/predict", json={"text": "fine"}).json()["model"]["version"] == 2


class FakeHeap:
    def __init__(self) -> None:
        self.resident = 500 << 20
        self.trims = 0

    def trim(self, _pad: int) -> int:
        self.trims += 1
        self.resident = 520 << 20
        return 1


@pytest.mark.anyio
async def test_the_heap_is_trimmed_once_after_a_burst_and_never_while_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    heap = FakeHeap()
    monkeypatch.setattr(heap_trim, "resident_bytes", lambda: heap.resident)
    monkeypatch.setattr(heap_trim, "_malloc_trim", lambda: heap.trim)
    answered, admitted = [0], [0]
    trimmer = HeapTrimmer(lambda: answered[0], lambda: admitted[0] > 0, interval_s=0.02)
    trimmer.start()
    try:
        await asyncio.sleep(0.1)
        heap.resident += 2 * GROWTH_BYTES
        await asyncio.sleep(0.1)
        assert heap.trims == 0, "idle: nothing answered since start, nothing to give back"
        admitted[0] = 100
        started = time.monotonic()
        while time.monotonic() - started < 0.2:  # a burst: answers keep coming
            answered[0] += 1
            await asyncio.sleep(0.005)
        assert heap.trims == 0, "busy"
        admitted[0] = 0
        await asyncio.sleep(0.1)
        assert heap.trims == 1, "quiet after the burst: one trim"
        heap.resident += 2 * GROWTH_BYTES  # grows again with no request answered meanwhile
        await asyncio.sleep(0.1)
        assert heap.trims == 1
    finally:
        await trimmer.stop()
