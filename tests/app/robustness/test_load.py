"""Sustained load, a 1,000-client overload burst, recovery and SIGTERM against a real `sentiment-serve`.

The machine is shared and slow, so nothing here asserts an absolute speed: capacity is measured in
the same run and the overload phase is judged against it (a bounded ratio), as is recovery latency.
Figures are printed (run with -s) and recorded in docs/operations.md.
"""

from __future__ import annotations

import asyncio
import random
import signal
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.helpers.client import Connection, ConnectionDropped, Reply
from tests.helpers.serve import ServeProcess

pytestmark = pytest.mark.integration

TIMEOUT_S = 5.0  # --request-timeout-s: the deadline every answer must beat (plus scheduling slack)
SLACK_S = 5.0
QUEUE = 64
SUSTAINED_CLIENTS = 32  # one text each: never more than QUEUE queued, so no 429 is legitimate here
BURST_CLIENTS = 1000
TEXTS = [
    "A gripping, beautifully shot film.",
    "Two hours I will never get back.",
    "Fine.",
    "The plot meanders but the performances carry it through to a moving ending.",
    "Dull, dull, dull.",
    "I laughed, I cried, I bought the soundtrack on the way home from the cinema.",
    "Not bad at all",
    "An overlong, self-indulgent mess with one good scene.",
]


def check_prediction(reply: Reply, text: str, reference: dict[str, dict[str, Any]]) -> None:
    (pred,) = reply.json()["predictions"]
    want = reference[text]
    assert pred["label"] == want["label"], (text, pred, want)
    assert np.allclose(list(pred["probabilities"].values()), list(want["probabilities"].values()), atol=1e-4)


async def closed_loop(
    host: str,
    port: int,
    stop_at: float,
    seed: int,
    replies: list[tuple[str, Reply]],
    honour_retry_after: bool,
    copies: int = 1,
) -> list[str]:
    """One client: send, wait for the answer, repeat until `stop_at`; returns transport failures."""
    rng = random.Random(seed)
    conn = Connection(host, port)
    failures: list[str] = []
    try:
        while time.monotonic() < stop_at:
            text = rng.choice(TEXTS)
            try:
                payload = {"text": text} if copies == 1 else {"texts": [text] * copies}
                reply = await asyncio.wait_for(conn.post_json("/predict", payload), TIMEOUT_S + SLACK_S)
            except TimeoutError:
                failures.append("hang: no answer within the deadline plus slack")
                await conn.close()
                continue
            except ConnectionDropped as exc:
                failures.append(str(exc))
                if "Refused" in str(exc):
                    break  # nothing listens any more
                continue
            replies.append((text, reply))
            if reply.status == 429 and honour_retry_after:
                await asyncio.sleep(float(reply.headers.get("retry-after", "1")) * rng.uniform(1.0, 1.5))
    finally:
        await conn.close()
    return failures


async def sequential_latencies(host: str, port: int, count: int) -> list[float]:
    conn = Connection(host, port)
    try:
        out = []
        for i in range(count):
            reply = await conn.post_json("/predict", {"text": TEXTS[i % len(TEXTS)]})
            assert reply.status == 200, reply.body
            out.append(reply.latency)
        return out
    finally:
        await conn.close()


async def run_load(server: ServeProcess, reference: dict[str, dict[str, Any]]) -> dict[str, Any]:
    host, port = "127.0.0.1", server.port
    figures: dict[str, Any] = {}
    baseline = await sequential_latencies(host, port, 30)
    figures["baseline_p50_ms"] = 1000 * statistics.median(baseline)

    # ---- sustained load at capacity: no errors, answers correct, RSS flat ----
    warm_s, measure_s = 1.5, 6.0
    replies: list[tuple[str, Reply]] = []
    rss: list[tuple[float, int]] = []
    began = time.monotonic()
    stop_at = began + warm_s + measure_s

    async def sample_rss() -> None:
        while time.monotonic() < stop_at:
            rss.append((time.monotonic() - began, server.rss_bytes()))
            await asyncio.sleep(0.2)

    cpu_before = server.cpu_seconds()
    results = await asyncio.gather(
        sample_rss(),
        *(closed_loop(host, port, stop_at, i, replies, False) for i in range(SUSTAINED_CLIENTS)),
    )
    failures = [f for r in results[1:] for f in r]
    assert not failures, failures[:5]
    statuses = Counter(reply.status for _, reply in replies)
    assert set(statuses) == {200}, statuses
    for text, reply in replies:
        check_prediction(reply, text, reference)
    measured = [r for _, r in replies if r.began >= began + warm_s]
    per_cpu_s = len(replies) / (server.cpu_seconds() - cpu_before)
    capacity = len(measured) / measure_s
    early = [b for t, b in rss if warm_s <= t < warm_s + measure_s / 2]
    late = [b for t, b in rss if t >= warm_s + measure_s / 2]
    figures |= {
        "sustained_rps": capacity,
        "sustained_per_server_cpu_s": per_cpu_s,
        "sustained_p50_ms": 1000 * statistics.median(r.latency for r in measured),
        "sustained_p99_ms": 1000 * float(np.percentile([r.latency for r in measured], 99)),
        "rss_first_half_mb": max(early) / 2**20,
        "rss_second_half_mb": max(late) / 2**20,
    }
    # Memory must not grow with the number of requests served (a leak shows as steady growth).
    assert max(late) <= max(early) * 1.10 + 16 * 2**20, figures

    # ---- overload: 1,000 clients against a queue of 64 ----
    burst_s = 6.0
    burst: list[tuple[str, Reply]] = []
    burst_began = time.monotonic()
    cpu0, client0 = server.cpu_seconds(), time.process_time()
    results = await asyncio.gather(
        *(closed_loop(host, port, burst_began + burst_s, 1000 + i, burst, True) for i in range(BURST_CLIENTS))
    )
    burst_ended = time.monotonic()
    figures["burst_server_cpu_s"] = server.cpu_seconds() - cpu0
    figures["burst_client_cpu_s"] = time.process_time() - client0
    failures = [f for r in results for f in r]
    assert not failures, (len(failures), failures[:5])  # no hang, no dropped connection
    statuses = Counter(reply.status for _, reply in burst)
    assert set(statuses) <= {200, 429, 504}, statuses
    assert statuses[429] > 0, f"the burst did not overload the queue: {statuses}"
    for text, reply in burst:
        body = reply.json()
        if reply.status == 200:
            check_prediction(reply, text, reference)
        elif reply.status == 429:
            assert body["error_type"] == "queue_full" and int(reply.headers["retry-after"]) >= 1
        else:
            assert body["error_type"] == "deadline_exceeded"
        assert reply.latency < TIMEOUT_S + SLACK_S
    accepted = [r for _, r in burst if r.status == 200 and r.ended <= burst_began + burst_s]
    figures |= {
        "burst_statuses": dict(sorted(statuses.items())),
        "burst_accepted_rps": len(accepted) / burst_s,
        "burst_accepted_p50_ms": 1000 * statistics.median(r.latency for r in accepted),
        "burst_max_latency_ms": 1000 * max(r.latency for _, r in burst),
        "burst_wall_s": burst_ended - burst_began,
        "burst_accepted_per_server_cpu_s": statuses[200] / figures["burst_server_cpu_s"],
    }
    # Other jobs share these 2 cores and the scheduler gives each runnable thread its share, so
    # wall-clock rates swing from run to run: capacity is judged per CPU-second the server got.
    # Without the load-shedding fast path (app/api/shedding.py) refusals cost as much as answers
    # and this ratio measured 0.23; with it, 0.44.
    assert figures["burst_accepted_per_server_cpu_s"] >= 0.3 * per_cpu_s, figures

    # ---- after the burst: normal latency, empty queue ----
    after = await sequential_latencies(host, port, 30)
    figures["after_p50_ms"] = 1000 * statistics.median(after)
    assert statistics.median(after) <= 3 * statistics.median(baseline) + 0.05, figures
    return figures


def test_sustained_load_overload_burst_and_recovery(
    start_server: Callable[..., ServeProcess], shared_models_dir: Path
) -> None:
    server = start_server(
        shared_models_dir,
        *("--queue-capacity", str(QUEUE), "--request-timeout-s", str(TIMEOUT_S), "--max-length", "64"),
        *("--drain-timeout-s", "10", "--log-level", "warning"),
    )
    reference = {t: httpx.post(f"{server.url}/predict", json={"text": t}).json()["predictions"][0] for t in TEXTS}
    figures = asyncio.run(run_load(server, reference))
    print("\nload figures:", figures)
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ready" and health["queue_depth"] == 0
    assert "Traceback" not in server.log()


async def sigterm_under_load(
    server: ServeProcess,
) -> tuple[list[tuple[str, Reply]], list[str], list[str], int, float, float]:
    host, port = "127.0.0.1", server.port
    replies: list[tuple[str, Reply]] = []
    stop_at = time.monotonic() + 30
    clients = [
        # 32 texts per request: enough queued work that the drain lasts long enough to be observed.
        asyncio.create_task(closed_loop(host, port, stop_at, i, replies, False, copies=32))
        for i in range(SUSTAINED_CLIENTS)
    ]
    for _ in range(1500):  # load is flowing
        if len(replies) >= 50:
            break
        await asyncio.sleep(0.02)
    readiness: list[str] = []
    async with httpx.AsyncClient(timeout=2) as probe:
        await probe.get(f"{server.url}/health/live")  # connected before the signal
        term_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        while server.process.poll() is None and time.monotonic() < term_at + 15:
            try:
                response = await probe.get(f"{server.url}/health")
                readiness.append(f"{response.status_code} {response.json()['status']}")
            except httpx.TransportError:
                break
            if response.status_code == 503:
                break
    exit_code = await asyncio.to_thread(server.process.wait, 20)
    exited_after = time.monotonic() - term_at
    results = await asyncio.gather(*clients)
    # After exit the clients can only be refused; what matters is that nothing admitted was lost.
    return replies, [f for r in results for f in r], readiness, exit_code, term_at, exited_after


def test_sigterm_under_load_flips_readiness_and_answers_everything_admitted(
    start_server: Callable[..., ServeProcess], shared_models_dir: Path
) -> None:
    server = start_server(shared_models_dir, "--drain-timeout-s", "10", "--log-level", "info", "--max-length", "64")
    replies, failures, readiness, exit_code, term_at, exited_after = asyncio.run(sigterm_under_load(server))
    log = server.log()
    assert exit_code == 0, log
    assert exited_after < 10 + 5 + SLACK_S  # drain grace + uvicorn's connection grace + scheduling
    assert readiness and readiness[-1] == "503 draining", readiness
    assert "drained: every admitted request was answered" in log and "Traceback" not in log
    for _, reply in replies:
        if reply.began < term_at:
            assert reply.status == 200, reply.body  # sent before the signal: answered
        else:
            assert reply.status in (200, 503), reply.body
            if reply.status == 503:
                assert reply.json()["error_type"] == "draining"
    # The only transport failures allowed are the listener going away once the drain is over.
    assert all("ConnectionRefused" in f or "IncompleteRead" in f or "Reset" in f for f in failures), failures[:5]
