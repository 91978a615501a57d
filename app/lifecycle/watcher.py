"""Follow an alias (or `latest`): when it moves, swap to the version it names (app/lifecycle/swap.py).

Polling, not inotify: it works on every filesystem a model store lives on (bind mounts, NFS,
Kubernetes volumes) and costs two `stat` calls per interval. `aliases.json` is replaced atomically
by `sentiment-models alias`, so its inode, size or mtime changes; a new version directory changes
the name directory's mtime (that is how `latest` moves). Only then is the store read.

A swap that fails (broken version, not enough memory) is not retried until the store changes
again: retrying a broken version every second would only fill the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from app.errors import ServiceError, SwapInProgress
from app.lifecycle.service import Service, State
from app.lifecycle.swap import ModelSwapper
from store.errors import StoreError

log = logging.getLogger("app.lifecycle")

Signature = tuple[tuple[int, int, int] | None, ...]


class AliasWatcher:
    def __init__(self, service: Service, swapper: ModelSwapper, alias: str, interval_s: float) -> None:
        self._service = service
        self._swapper = swapper
        self.alias = alias
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._markers = service.store.change_markers(service.settings.name)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alias-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _signature(self) -> Signature:
        def stat(path: Path) -> tuple[int, int, int] | None:
            try:
                st = os.stat(path)
            except OSError:
                return None
            return (st.st_ino, st.st_size, st.st_mtime_ns)

        return tuple(stat(path) for path in self._markers)

    async def _run(self) -> None:
        log.info("following %s/%s every %.1fs", self._service.settings.name, self.alias, self.interval_s)
        seen: Signature | None = None
        while True:
            if self._service.state is State.READY:
                signature = self._signature()
                if signature != seen and await self._follow():
                    seen = signature
            await asyncio.sleep(self.interval_s)

    async def _follow(self) -> bool:
        """Swap if the alias names another version; False means 'look again next time'."""
        service = self._service
        loaded = service.loaded
        if loaded is None:
            return False
        try:
            version = service.store.resolve(service.settings.name, self.alias).version
        except (StoreError, ValueError, OSError) as exc:
            log.warning("cannot follow %r: %s", self.alias, exc)
            return True
        if version == loaded.source.version:
            return True
        log.info("%r now names version %d (serving %d): swapping", self.alias, version, loaded.source.version)
        try:
            await self._swapper.swap(version, trigger=f"watch:{self.alias}")
        except SwapInProgress:
            return False  # an admin swap is running: look again once it is over
        except ServiceError:
            return True  # logged and counted by the swapper; wait for the store to change again
        return True
