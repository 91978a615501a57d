"""Give the C heap's freed memory back to the operating system once a burst is over.

A burst of 1,000 concurrent requests allocates request objects, token arrays and activations of every
batch shape from several threads; glibc keeps most of what is freed in its arenas instead of returning
it, so resident memory climbed burst after burst (measured: 592 MB idle, 852 / 954 / 1,030 MB after three
bursts; `malloc_trim(0)` brought it to 707 MB; docs/operations.md, "Recovery after a burst"). The
trimmer calls `malloc_trim` when the service is idle and resident memory has grown since the last trim,
in a thread (ctypes releases the GIL, so the event loop keeps serving). Not glibc (musl, macOS): nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("app.lifecycle")

GROWTH_BYTES = 32 << 20  # trim only after this much growth: a trim of an unchanged heap only costs
_STATM = Path("/proc/self/statm")


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def resident_bytes() -> int:
    try:
        return int(_STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class HeapTrimmer:
    """Every `interval_s`: when the last interval was quiet (`activity()` unchanged, `busy()` false), requests
    were answered since the last trim, and resident memory is GROWTH_BYTES above the least a trim has left,
    trim. So a burst is followed by one trim 1-2 intervals after its last answer; an idle service trims
    nothing. The floor is the least, not the last: on a crowded machine a burst has quiet seconds (the loop
    reading requests, none answered yet), and a trim there must not raise the bar for the one after it.

    activity: a number that changes with every answered request; busy: work admitted and not answered."""

    def __init__(self, activity: Callable[[], int], busy: Callable[[], bool], interval_s: float) -> None:
        self._activity = activity
        self._busy = busy
        self._interval_s = interval_s
        self._trim = _malloc_trim()
        self._task: asyncio.Task[None] | None = None
        self.trims = 0

    def start(self) -> None:
        if self._interval_s > 0 and self._trim is not None and resident_bytes():
            self._task = asyncio.create_task(self._run(), name="heap-trim")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        floor, seen, trimmed_at = resident_bytes(), self._activity(), self._activity()
        while True:
            await asyncio.sleep(self._interval_s)
            now = self._activity()
            quiet = now == seen and now != trimmed_at and not self._busy()
            if quiet and resident_bytes() > floor + GROWTH_BYTES:
                floor, trimmed_at = min(floor, await self.trim_now()), now
            seen = now

    async def trim_now(self) -> int:
        """Trim in a thread; the resident bytes afterwards."""
        assert self._trim is not None
        before, started = resident_bytes(), time.perf_counter()
        await asyncio.to_thread(self._trim, 0)
        after = resident_bytes()
        self.trims += 1
        log.log(
            logging.INFO if before - after >= GROWTH_BYTES else logging.DEBUG,
            "heap trim: resident %.0f -> %.0f MiB in %.0f ms (freed C-heap memory returned after a busy period)",
            before / (1 << 20),
            after / (1 << 20),
            1e3 * (time.perf_counter() - started),
        )
        return after
