"""The client side of bench/bursts.py: bursts of concurrent one-text requests and latency probes, with httpx.

httpx because the issue's measurement used it (an AsyncClient, a pool of 1,010 connections, 120 s timeout)
and because its pool expiry (5 s) is what collided with uvicorn's old 5 s keep-alive. Every request is
recorded: its status (None when the connection was closed under it), whether a 429 carried Retry-After,
whether it rode a connection kept alive from earlier (reused) and whether this client hung up on purpose.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ALLOWED = frozenset({200, 429, 503, 504})
PROBE_TEXT = "probe number {} was a fine film"


@dataclass
class Outcome:
    status: int | None  # None: no HTTP status (the connection was closed or reset under the request)
    elapsed_s: float
    reused: bool  # sent on a kept-alive connection opened before this request
    retry_after: bool = False
    error: str | None = None
    error_type: str | None = None
    hung_up: bool = False  # this client disconnected mid-request on purpose


def make_client(port: int, pool: int = 1010, timeout_s: float = 120.0) -> httpx.AsyncClient:
    """Like the issue's client: one pool, keep-alive with httpx's default 5 s expiry."""
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=timeout_s)


async def request(
    client: httpx.AsyncClient, text: str, headers: dict[str, str], hang_up_after_s: float | None = None
) -> Outcome:
    reused = [True]

    async def trace(event: str, _info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            reused[0] = False

    started = time.perf_counter()
    call = client.post("/predict", json={"text": text}, headers=headers, extensions={"trace": trace})
    try:
        if hang_up_after_s is None:
            response = await call
        else:
            response = await asyncio.wait_for(call, hang_up_after_s)  # cancelling closes the connection
    except TimeoutError:
        return Outcome(None, time.perf_counter() - started, reused[0], hung_up=True)
    except httpx.HTTPError as exc:
        return Outcome(None, time.perf_counter() - started, reused[0], error=f"{type(exc).__name__}({exc!s})")
    error_type = None
    if response.status_code != 200:
        try:
            error_type = response.json().get("error_type")
        except ValueError:
            error_type = "not JSON"
    return Outcome(
        response.status_code,
        time.perf_counter() - started,
        reused[0],
        retry_after="retry-after" in response.headers,
        error_type=error_type,
    )


async def burst(
    client: httpx.AsyncClient,
    texts: Sequence[str],
    headers: dict[str, str],
    hang_up_fraction: float = 0.0,
    seed: int = 0,
) -> list[Outcome]:
    """Every text as its own request, all at once. A `hang_up_fraction` of the clients disconnect after a
    random 0.05-1 s, while their request is queued or computing."""
    rng = random.Random(seed)
    delays = [rng.uniform(0.05, 1.0) if rng.random() < hang_up_fraction else None for _ in texts]
    return list(await asyncio.gather(*(request(client, t, headers, d) for t, d in zip(texts, delays, strict=True))))


def server_times(pid: int) -> tuple[float, float]:
    """Seconds the server's threads have run on a CPU, and spent runnable waiting for one (schedstat, ns
    precision): the second is what other processes on the machine took from it."""
    ran = waited = 0.0
    for path in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            fields = path.read_text().split()
            ran, waited = ran + int(fields[0]) / 1e9, waited + int(fields[1]) / 1e9
        except (OSError, IndexError, ValueError):
            continue  # the thread ended while we looked
    return ran, waited


async def probe(client: httpx.AsyncClient, headers: dict[str, str], pid: int, n: int = 20) -> dict[str, float]:
    """n sequential one-text requests on one kept-alive connection, after one that opens (or reuses) it.

    Besides the client's latencies: the server's CPU time per request (its own work, whatever the machine's
    load) and the time its threads waited for a CPU per request (other processes' share)."""
    await client.post("/predict", json={"text": "warm up"}, headers=headers)
    ran, waited = server_times(pid)
    latencies = []
    for i in range(n):
        started = time.perf_counter()
        response = await client.post("/predict", json={"text": PROBE_TEXT.format(i)}, headers=headers)
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
    ran_after, waited_after = server_times(pid)
    return {
        "p50_ms": round(1e3 * statistics.median(latencies), 2),
        "mean_ms": round(1e3 * statistics.mean(latencies), 2),
        "max_ms": round(1e3 * max(latencies), 2),
        "cpu_ms": round(1e3 * (ran_after - ran) / n, 2),
        "run_queue_ms": round(1e3 * (waited_after - waited) / n, 2),
    }


async def probe_alone(port: int, headers: dict[str, str], pid: int) -> dict[str, float]:
    """A probe on a client (and connection) of its own."""
    async with make_client(port, pool=4, timeout_s=30) as client:
        return await probe(client, headers, pid)


def summarise(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Counts by status; the requests without a status (not counting deliberate hang-ups) and why."""
    statuses: dict[str, int] = {}
    for o in outcomes:
        key = "hung_up" if o.hung_up else str(o.status)
        statuses[key] = statuses.get(key, 0) + 1
    lost = [o for o in outcomes if o.status is None and not o.hung_up]
    answered = [o for o in outcomes if o.status is not None]
    return {
        "statuses": statuses,
        "no_status": len(lost),
        "no_status_detail": [
            {"error": o.error, "elapsed_s": round(o.elapsed_s, 3), "reused": o.reused} for o in lost[:20]
        ],
        "unexpected_status": sum(o.status not in ALLOWED for o in answered),
        "error_types": sorted({o.error_type for o in answered if o.error_type}),
        "429_without_retry_after": sum(o.status == 429 and not o.retry_after for o in answered),
        "reused_connections": sum(o.reused for o in outcomes),
        "longest_s": round(max((o.elapsed_s for o in answered), default=0.0), 2),
    }
