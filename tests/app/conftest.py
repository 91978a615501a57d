"""Fixtures for the service tests: a fake batch model, settings and apps around tiny real models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.app import TEST_SETTINGS, wait_ready
from tests.helpers.fakes import FakeModel
from tests.helpers.models import BROKEN_VERSION, publish_tiny


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake_model() -> FakeModel:
    return FakeModel()


@pytest.fixture
def make_settings(shared_models_dir: Path) -> Callable[..., Any]:
    from app.config import Settings

    def _make(**overrides: Any) -> Settings:
        return Settings(**{"models_dir": shared_models_dir, **TEST_SETTINGS, **overrides})

    return _make


@pytest.fixture
def make_client(make_settings: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """TestClient around a fresh app (lifespan running, model warm); `loaded` lets a test wrap forward."""
    from fastapi.testclient import TestClient

    from app.lifecycle.service import load_configured
    from app.main import create_app

    clients: list[TestClient] = []

    def _make(wrap_forward: Callable[[Any], Any] | None = None, **overrides: Any) -> TestClient:
        settings = make_settings(**overrides)
        loaded = load_configured(settings)
        if wrap_forward is not None:
            loaded.forward = wrap_forward(loaded.forward)
        client = TestClient(create_app(settings, loaded), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        wait_ready(client)
        return client

    yield _make
    for client in clients:
        client.__exit__(None, None, None)


# ---- model swap ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def swap_store_template(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """Versions 1, 2, 4 of tiny random BERTs (different seeds: different outputs) and version 3,
    published intact and then corrupted on disk (same size, different bytes), as a bad copy would be."""
    root = tmp_path_factory.mktemp("swap-models")
    for seed in (1, 2, 3, 4):
        publish_tiny(root, tokenizer, seed=seed)
    weights = root / "sentiment" / str(BROKEN_VERSION) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-64:] = bytes(b ^ 0xFF for b in data[-64:])
    weights.write_bytes(data)
    return root


@pytest.fixture
def swap_store(swap_store_template: Path, tmp_path: Path) -> Path:
    """A private copy of the swap template store: tests move aliases in it."""
    import shutil

    return Path(shutil.copytree(swap_store_template, tmp_path / "swap-models"))
