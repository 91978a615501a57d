"""Service apps in the test process: default test settings, readiness, a live uvicorn on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
    # Freezing is process-wide: in a test process it would make every later test's garbage cycles among
    # the frozen objects immortal. Real `sentiment-serve` processes in the tests run with the default (on).
    "gc_freeze": False,
}


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


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=2))
    with running(server) as port:
        yield f"http://127.0.0.1:{port}"


@contextmanager
def running(server: Any, timeout: float = 30.0) -> Iterator[int]:
    """Run a uvicorn.Server (or subclass) in a thread on a free 127.0.0.1 port until it has started; yields
    the port. On exit it is asked to stop and joined."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def gate_forward(loaded: Any, timeout_s: float = 20.0) -> tuple[threading.Event, threading.Event]:
    """Let a test hold batches in a loaded model's forward pass: while `gate` is clear a batch waits in it
    (up to timeout_s); `entered` is set whenever a batch reaches it. Returns (gate, entered), gate open."""
    forward = loaded.forward
    gate, entered = threading.Event(), threading.Event()
    gate.set()

    def gated(batch: Any) -> Any:
        entered.set()
        gate.wait(timeout_s)
        return forward(batch)

    loaded.forward = gated
    return gate, entered


@contextmanager
def in_process_client(models_dir: Any, **overrides: Any) -> Iterator[Any]:
    """A TestClient around the real app serving `models_dir` with TEST_SETTINGS (+ overrides), ready;
    server exceptions become 500 responses, as a client would see them."""
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.lifecycle.service import load_configured
    from app.main import create_app

    settings = Settings(models_dir=models_dir, **{**TEST_SETTINGS, **overrides})
    with TestClient(create_app(settings, load_configured(settings)), raise_server_exceptions=False) as client:
        wait_ready(client)
        yield client
