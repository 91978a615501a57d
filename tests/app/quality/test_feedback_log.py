"""Durable feedback files (app/quality/feedback_log.py): fsync, rotation, the size cap, no torn lines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.quality import feedback_log
from app.quality.feedback_log import FeedbackLog, FeedbackStoreFull


def test_appends_are_fsynced_before_returning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(feedback_log.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    log = FeedbackLog(tmp_path / "feedback", 1 << 20, 1 << 30)
    path = log.append(b'{"a": 1}\n')
    log.append(b'{"a": 2}\n{"a": 3}\n')
    assert path.read_bytes() == b'{"a": 1}\n{"a": 2}\n{"a": 3}\n'
    assert path.name.startswith("feedback-") and path.suffix == ".jsonl"
    assert len(synced) >= 3  # the new name's directory once, then every append
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_files_rotate_before_passing_their_size(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path, max_file_bytes=20, max_total_bytes=1 << 20)
    first = log.append(b"x" * 15 + b"\n")
    second = log.append(b"y" * 10 + b"\n")
    third = log.append(b"z" * 2 + b"\n")
    assert first != second == third
    assert sorted(p.read_bytes() for p in tmp_path.glob("feedback-*.jsonl")) == [
        b"x" * 15 + b"\n",
        b"y" * 10 + b"\nzz\n",
    ]


def test_the_cap_refuses_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "feedback-old.jsonl").write_bytes(b"o" * 90)
    log = FeedbackLog(tmp_path, max_file_bytes=1000, max_total_bytes=100)
    log.append(b"12345\n")
    with pytest.raises(FeedbackStoreFull, match="would pass SENTIMENT_FEEDBACK_MAX_TOTAL_BYTES"):
        log.append(b"123456\n")
    assert log.current is not None and log.current.read_bytes() == b"12345\n"


def test_a_failed_write_leaves_no_torn_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = FeedbackLog(tmp_path, 1 << 20, 1 << 30)
    path = log.append(b"whole\n")
    real_write = os.write

    def half_then_full(fd: int, data: memoryview) -> int:
        if len(data) > 4:
            return real_write(fd, bytes(data[:4]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(feedback_log.os, "write", half_then_full)
    with pytest.raises(OSError, match="No space"):
        log.append(b"second line\n")
    assert path.read_bytes() == b"whole\n"
