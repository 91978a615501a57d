"""During a drain every response says `Connection: close`, so clients stop reusing connections that the end of
the drain closes (a client sending on a kept-alive connection as the server closes it gets no status).

The real service (tiny model) behind the real server class (app/lifecycle/server.py), in a thread on
127.0.0.1; the drain is begun as the first SIGTERM would begin it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import httpx

from app.config import Settings
from app.lifecycle.server import DrainingServer
from app.lifecycle.service import State, load_configured
from app.main import create_app
from tests.helpers.app import gate_forward, running
from tests.helpers.client import raw_request, read_response

PREDICT = raw_request("/predict", {"text": "a fine film"})


def test_responses_during_a_drain_close_their_connection(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(drain_timeout_s=20)
    loaded = load_configured(settings)
    gate, entered = gate_forward(loaded)
    app = create_app(settings, loaded)
    service = app.state.service
    server = DrainingServer(app, service, settings, port=0)
    with running(server) as port:
        deadline = time.monotonic() + 30
        while httpx.get(f"http://127.0.0.1:{port}/health").status_code != 200:
            assert time.monotonic() < deadline, "not ready"
            time.sleep(0.02)
        idle = socket.create_connection(("127.0.0.1", port), timeout=20)
        busy = socket.create_connection(("127.0.0.1", port), timeout=20)
        try:
            idle.sendall(PREDICT)
            before = read_response(idle)
            assert before.status == 200 and "connection" not in before.headers  # kept alive while serving

            gate.clear()
            entered.clear()
            busy.sendall(PREDICT)  # admitted, held in the forward pass across the start of the drain
            assert entered.wait(10)
            loop = next(iter(server.server_state.connections)).loop  # the server's event loop
            begun = threading.Event()
            loop.call_soon_threadsafe(lambda: (server.begin_drain(), begun.set()))
            assert begun.wait(5)
            deadline = time.monotonic() + 5
            while service.state is not State.DRAINING:
                assert time.monotonic() < deadline
                time.sleep(0.01)

            idle.sendall(PREDICT)  # a kept-alive connection reused during the drain
            refused = read_response(idle)
            assert refused.status == 503 and refused.json()["error_type"] == "draining"
            assert refused.headers["connection"] == "close"
            assert idle.recv(1) == b""

            with socket.create_connection(("127.0.0.1", port), timeout=20) as fresh:  # still listening
                fresh.sendall(PREDICT)
                late = read_response(fresh)
                assert late.status == 503 and late.headers["connection"] == "close"

            gate.set()
            answered = read_response(busy)  # admitted before the drain: answered, and told to go
            assert answered.status == 200 and answered.headers["connection"] == "close"
            assert busy.recv(1) == b""
        finally:
            gate.set()
            idle.close()
            busy.close()
        deadline = time.monotonic() + 20
        while not server.should_exit:  # the drain ends the server once everything admitted is answered
            assert time.monotonic() < deadline, "the drain did not finish"
            time.sleep(0.02)
