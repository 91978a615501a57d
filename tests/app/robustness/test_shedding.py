"""The load-shedding fast path (app/api/shedding.py): 429 before the body is parsed, never hiding 401 or 503."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

CAPACITY = 4


def fill_queue(make_client: Callable[..., TestClient], **overrides: Any) -> tuple[TestClient, threading.Event, list]:
    """A client whose device is held by a gate and whose queue holds CAPACITY inputs; returns the waiters."""
    gate = threading.Event()
    gate.set()

    def gated(forward: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(batch: Any) -> Any:
            gate.wait(30)
            return forward(batch)

        return wrapped

    client = make_client(wrap_forward=gated, queue_capacity=CAPACITY, max_batch_size=1, **overrides)
    gate.clear()
    batcher = client.app.state.service.batcher  # type: ignore[attr-defined]
    headers = {"Authorization": "Bearer right"} if overrides.get("api_key") else {}
    answers: list[Any] = []
    waiters = []
    deadline = time.monotonic() + 20
    while batcher.admitted < CAPACITY:
        assert time.monotonic() < deadline, "queue did not fill"
        waiter = threading.Thread(
            target=lambda: answers.append(client.post("/predict", json={"text": "wait"}, headers=headers))
        )
        waiter.start()
        waiters.append(waiter)
        time.sleep(0.05)
    return client, gate, [answers, waiters]


def release(gate: threading.Event, waiting: list) -> list[Any]:
    answers, waiters = waiting
    gate.set()
    for waiter in waiters:
        waiter.join(30)
    return answers


def test_full_queue_refuses_before_parsing_and_recovers(make_client: Callable[..., TestClient]) -> None:
    client, gate, waiting = fill_queue(make_client)
    try:
        # Not even valid JSON: only a refusal that never reads the body can answer 429 here.
        refused = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert refused.json()["error_type"] == "queue_full" and refused.headers["x-request-id"]
        assert client.get("/health").status_code == 200  # overload is not unreadiness
    finally:
        answers = release(gate, waiting)
    assert [a.status_code for a in answers] == [200] * len(answers)
    assert client.post("/predict", json={"text": "room again"}).status_code == 200
    metrics = client.get("/metrics").text
    assert 'sentiment_requests_total{route="/predict",status="429"} 1.0' in metrics
    assert 'sentiment_rejections_total{reason="queue_full"} 1.0' in metrics


def test_without_a_valid_key_the_answer_stays_401(make_client: Callable[..., TestClient]) -> None:
    client, gate, waiting = fill_queue(make_client, api_key="right")
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic right"}):
            response = client.post("/predict", json={"text": "hi"}, headers=headers)
            assert response.status_code == 401 and response.json()["error_type"] == "unauthorized"
        good = client.post("/predict", json={"text": "hi"}, headers={"Authorization": "Bearer right"})
        assert good.status_code == 429
    finally:
        release(gate, waiting)


def test_draining_answers_503_not_429(make_client: Callable[..., TestClient]) -> None:
    client, gate, waiting = fill_queue(make_client)
    service = client.app.state.service  # type: ignore[attr-defined]
    drained = client.portal.start_task_soon(service.drain, 30.0)  # type: ignore[union-attr]
    try:
        deadline = time.monotonic() + 10
        while client.get("/health").status_code == 200:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        response = client.post("/predict", json={"text": "late"})
        assert response.status_code == 503 and response.json()["error_type"] == "draining"
    finally:
        answers = release(gate, waiting)
    assert [a.status_code for a in answers] == [200] * len(answers)  # admitted work still finishes
    assert drained.result(30) is True


def _overload_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "app.errors" and "-> 429" in r.getMessage()]


def test_a_flood_of_429s_logs_one_warning_per_second(
    make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    client, gate, waiting = fill_queue(make_client)
    try:
        with caplog.at_level(logging.INFO, logger="app.errors"):
            began = time.monotonic()
            for _ in range(40):  # refused by the fast path, before parsing
                assert client.post("/predict", json={"text": "hi"}).status_code == 429
            elapsed = time.monotonic() - began
    finally:
        release(gate, waiting)
    lines = _overload_lines(caplog)
    assert 1 <= len(lines) <= math.ceil(elapsed) + 1, [r.getMessage() for r in lines]
    assert all(r.levelno == logging.WARNING for r in lines)
    assert all("more queue_full refusals" in r.getMessage() for r in lines[1:])
    assert 'sentiment_rejections_total{reason="queue_full"} 40.0' in client.get("/metrics").text


def test_the_route_and_the_fast_path_share_the_budget(
    make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    tight = make_client(queue_capacity=2)  # three texts never fit: the engine itself refuses
    with caplog.at_level(logging.INFO, logger="app.errors"):
        began = time.monotonic()
        for _ in range(40):
            assert tight.post("/predict", json={"texts": ["a", "b", "c"]}).status_code == 429
        elapsed = time.monotonic() - began
    lines = _overload_lines(caplog)
    assert 1 <= len(lines) <= math.ceil(elapsed) + 1, [r.getMessage() for r in lines]
    assert all(r.levelno == logging.WARNING for r in lines)
