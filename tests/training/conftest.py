"""Fixtures for the training tests: a tiny local base model and small labelled data files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.helpers.data import labelled_rows, write_rows
from tests.helpers.models import build_tiny_bert


@pytest.fixture
def data_file(tmp_path: Path) -> Callable[..., Path]:
    def _make(name: str = "data.csv", rows: Sequence[dict[str, object]] | None = None) -> Path:
        return write_rows(tmp_path / name, rows if rows is not None else labelled_rows())

    return _make


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:
    """A save_pretrained folder holding a tiny random BERT and the real tokenizer (a --base-model)."""
    folder = tmp_path_factory.mktemp("tiny-base")
    build_tiny_bert(["a", "b"], seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
