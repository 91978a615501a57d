"""Durable feedback: append records to JSONL files under the feedback directory, fsynced, rotated, capped.

- Durable: each /feedback call is one `write` of whole lines followed by `fsync`; a new file is also
  made durable in its directory (fsync of the directory). The call answers only after that, so an
  acknowledged correction survives a crash or power loss.
- Whole lines: if a write fails half-way (disk full), the file is truncated back to where it was, so a
  reader never sees a torn record.
- Rotation: a file is closed once the next write would take it past `max_file_bytes`; names are
  `feedback-<UTC start>-<host>-<pid>.jsonl`, so replicas sharing a directory never write the same file.
- Cap: when the directory's `feedback-*.jsonl` files would pass `max_total_bytes`, nothing is written and
  the caller answers 507 `feedback_store_full`: corrections are training data, so old ones are never
  deleted behind the operator's back; move them into training (or raise the cap) instead.

Blocking (fsync): call it from a worker thread.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from pathlib import Path

from store.files import fsync_path

PATTERN = "feedback-*.jsonl"


class FeedbackStoreFull(Exception):
    """Storing the feedback would pass the directory's size cap."""


class FeedbackLog:
    def __init__(self, directory: Path, max_file_bytes: int, max_total_bytes: int) -> None:
        self.directory = directory
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._size = 0
        self._total: int | None = None  # bytes in the directory's feedback files, counted on first use
        self._host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())[:40] or "host"

    @property
    def current(self) -> Path | None:
        return self._path

    def append(self, data: bytes) -> Path:
        """Append whole lines durably; returns the file written. FeedbackStoreFull or OSError: nothing written."""
        with self._lock:
            if self._total is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._total = sum(p.stat().st_size for p in self.directory.glob(PATTERN) if p.is_file())
            if self._total + len(data) > self.max_total_bytes:
                raise FeedbackStoreFull(
                    f"the feedback directory {self.directory} holds {self._total} bytes; storing {len(data)} more "
                    f"would pass SENTIMENT_FEEDBACK_MAX_TOTAL_BYTES ({self.max_total_bytes})"
                )
            if self._path is None or (self._size > 0 and self._size + len(data) > self.max_file_bytes):
                self._rotate()
            assert self._path is not None
            self._write(self._path, data)
            self._size += len(data)
            self._total += len(data)
            return self._path

    def _rotate(self) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"feedback-{stamp}-{self._host}-{os.getpid()}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        fsync_path(self.directory)  # the new name itself must survive a crash
        self._path, self._size = path, 0

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            start = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, start)  # never leave a torn line for the trainer
                raise
        finally:
            os.close(fd)
