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
