"""Fixtures for the training tests: small labelled data files (the tiny base model is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.helpers.data import labelled_rows, write_rows


@pytest.fixture
def data_file(tmp_path: Path) -> Callable[..., Path]:
    def _make(name: str = "data.csv", rows: Sequence[dict[str, object]] | None = None) -> Path:
        return write_rows(tmp_path / name, rows if rows is not None else labelled_rows())

    return _make
