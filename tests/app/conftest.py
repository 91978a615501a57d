"""Fixtures for the service tests: a fake batch model, settings and apps around tiny real models."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.batching import OutOfMemory, Tokenized


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeModel:
    """Stands in for the real model: a text of n characters is n tokens.

    Logits are a pure function of the text (sum of code points, length), so a test can check each
    answer went to the right request. A text containing "!" makes its batch fail; `gate` holds
    every forward pass until set; `oom_above` raises OutOfMemory for larger batches.
    """

    def __init__(self, max_length: int = 10_000, oom_above: int | None = None) -> None:
        self.max_length = max_length
        self.oom_above = oom_above
        self.gate = threading.Event()
        self.gate.set()
        self.batches: list[list[str]] = []  # texts of every batch that reached predict, in order
        self.collated = 0
        self.started = threading.Event()  # set when a forward pass begins

    def tokenize(self, texts: Sequence[str]) -> Tokenized:
        ids = [[ord(c) for c in t[: self.max_length]] for t in texts]
        return Tokenized(ids=ids, lengths=[len(x) for x in ids], truncated=[len(t) > self.max_length for t in texts])

    def collate(self, ids: Sequence[Sequence[int]]) -> list[list[int]]:
        self.collated += 1
        return [list(x) for x in ids]

    def predict(self, batch: list[list[int]]) -> np.ndarray:
        self.started.set()
        self.gate.wait(30)
        if self.oom_above is not None and len(batch) > self.oom_above:
            raise OutOfMemory(f"fake OOM at {len(batch)}")
        texts = ["".join(map(chr, x)) for x in batch]
        self.batches.append(texts)
        if any("!" in t for t in texts):
            raise RuntimeError("fake forward failure")
        return np.array([expected_logits(t) for t in texts], dtype=np.float32)


def expected_logits(text: str) -> list[float]:
    return [float(sum(map(ord, text)) % 9973), float(len(text))]


@pytest.fixture
def fake_model() -> FakeModel:
    return FakeModel()


# ---- real tiny models ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def shared_models_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """One tiny random BERT published once (real directory format) for read-only API tests."""
    from tests.conftest import build_tiny_bert
    from training.export import publish_model
    from training.store import ModelStore

    root = tmp_path_factory.mktemp("shared-models")
    publish_model(
        ModelStore(root),
        "sentiment",
        build_tiny_bert(["negative", "positive"], seed=3),
        tokenizer,
        {"temperature": 1.5, "base_model": {"name_or_path": "tiny-random-bert"}, "metrics": {"accuracy": 0.5}},
        extra_files={"metrics.json": "{}\n", "README.md": "# tiny test model\n"},
    )
    return root


TEST_SETTINGS: dict[str, Any] = {
    "name": "sentiment",
    "version": "latest",
    "device": "cpu",
    "torch_threads": 1,
    "max_length": 64,
    "max_batch_tokens": 1024,
    "max_wait_ms": 2,
    "api_key": None,
    "log_level": "warning",
}


@pytest.fixture
def make_settings(shared_models_dir: Path) -> Callable[..., Any]:
    from app.core.config import Settings

    def _make(**overrides: Any) -> Settings:
        return Settings(**{"models_dir": shared_models_dir, **TEST_SETTINGS, **overrides})

    return _make


def wait_ready(client: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = client.get("/health")
        if health.status_code == 200:
            return
        if health.json()["status"] == "failed":
            break
        time.sleep(0.02)
    raise AssertionError(f"service not ready: {client.get('/health').json()}")


@pytest.fixture
def make_client(make_settings: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """TestClient around a fresh app (lifespan running, model warm); `loaded` lets a test wrap forward."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.model.loader import load_model

    clients: list[TestClient] = []

    def _make(wrap_forward: Callable[[Any], Any] | None = None, **overrides: Any) -> TestClient:
        settings = make_settings(**overrides)
        loaded = load_model(settings)
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


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


# ---- model swap ------------------------------------------------------------------------------
BROKEN_VERSION = 3


@pytest.fixture(scope="session")
def swap_store_template(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """Versions 1, 2, 4 of tiny random BERTs (different seeds: different outputs) and version 3,
    published intact and then corrupted on disk (same size, different bytes), as a bad copy would be."""
    from tests.conftest import build_tiny_bert
    from training.export import publish_model
    from training.store import ModelStore

    root = tmp_path_factory.mktemp("swap-models")
    for seed in (1, 2, 3, 4):
        publish_model(
            ModelStore(root),
            "sentiment",
            build_tiny_bert(["negative", "positive"], seed=seed),
            tokenizer,
            {"temperature": 1.0, "base_model": {"name_or_path": "tiny-random-bert"}},
            extra_files={"metrics.json": "{}\n", "README.md": "# tiny test model\n"},
        )
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
