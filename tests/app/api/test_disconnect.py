"""A client that hangs up while its request is queued costs no compute (real uvicorn on 127.0.0.1)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from app.config import Settings
from app.lifecycle.service import load_configured
from app.main import create_app
from tests.helpers.app import gate_forward, live_server


def metric(url: str, line_prefix: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_disconnected_request_is_dropped_before_compute(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(max_wait_ms=1)
    loaded = load_configured(settings)
    gate, entered = gate_forward(loaded)
    with live_server(create_app(settings, loaded)) as url:
        for _ in range(500):
            if httpx.get(f"{url}/health").status_code == 200:
                break
            time.sleep(0.01)
        gate.clear()
        entered.clear()
        first: dict[str, Any] = {}
        holder = threading.Thread(
            target=lambda: first.update(r=httpx.post(f"{url}/predict", json={"text": "holds the device"}, timeout=30))
        )
        holder.start()
        assert entered.wait(10)

        body = json.dumps({"texts": ["never mind", "me neither"]}).encode()
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as sock:
            sock.sendall(
                b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            deadline = time.monotonic() + 10
            # Admitted (tokenized) and, with max_wait 1 ms, already prepared as the next batch behind the
            # held one: the drop has to happen in the inference worker, just before compute.
            while metric(url, "sentiment_tokenize_duration_seconds_count") < 2:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            time.sleep(0.05)
        # The socket is closed: the server notices and drops the request.
        deadline = time.monotonic() + 10
        while metric(url, 'sentiment_rejections_total{reason="disconnected"}') < 1:
            assert time.monotonic() < deadline, "disconnect not noticed"
            time.sleep(0.01)
        gate.set()
        holder.join(30)
        assert first["r"].status_code == 200
        assert metric(url, "sentiment_inputs_total") == 1  # only the held request reached the model
        assert httpx.post(f"{url}/predict", json={"text": "still fine"}).status_code == 200
