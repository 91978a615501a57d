"""Closed-loop HTTP load generator, run as its own process: `python -m bench.loadgen ...`.

`concurrency` workers each hold one keep-alive connection and send the next request as soon as
their previous answer arrives, until `requests` requests have been sent. The client is a minimal
HTTP/1.1 implementation on asyncio (uvloop when installed): request bytes are built before the
clock starts and a response is parsed only as far as status, Content-Length and the predictions
count, so the client takes as little of the two shared cores as possible (docs/performance.md
compares it with httpx and wrk).

Throughput is every answered text over the wall time from the first request sent to the last answer.
(Counting only a "steady" window before the last send undercounts servers that interleave requests:
this service splits each 32-text request across length-sorted batches, so its first answers come
late, all at once, while it has been busy throughout.) Runs are several rounds of `concurrency`
requests long, so the start and the drain are a small part of them. Latency percentiles cover every
request answered. With `--max-seconds` the run also stops sending after that long (slow contenders at
high concurrency in the full mode) and gives up on answers missing that long again after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson


class HttpError(Exception):
    pass


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.buffer = bytearray()
        self.head_end = -1
        self.body_len = 0
        self.status = 0
        self.closing = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if self.head_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self._parse_head(bytes(buf[:end]))
            self.head_end = end + 4
        if len(buf) >= self.head_end + self.body_len:
            body = bytes(buf[self.head_end : self.head_end + self.body_len])
            del buf[: self.head_end + self.body_len]
            self.head_end = -1
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result((self.status, body))

    def _parse_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        self.status = int(lines[0].split(b" ", 2)[1])
        self.body_len = -1
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                self.body_len = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                self.closing = True
            elif name == b"transfer-encoding":
                self._fail(HttpError("chunked responses are not supported by this client"))
        if self.body_len < 0:
            self._fail(HttpError("response without Content-Length"))
            self.body_len = 0

    def _fail(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    done_at: list[tuple[float, int]] = field(default_factory=list)  # (completion time, texts) of successes

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def build_request(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class LoadGenerator:
    def __init__(
        self, host: str, port: int, path: str, bodies: list[bytes], sizes: list[int], timeout_s: float
    ) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.raw = [build_request(host, port, path, b) for b in bodies]
        self.sizes = sizes
        self.next_index = 0
        self.last_sent_at = 0.0
        self.stop_at = float("inf")  # no new requests after this perf_counter() time
        self.conns: list[_Connection] = []

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_Connection, self.host, self.port)
        self.conns.append(protocol)
        return protocol

    async def _worker(self, conn: _Connection, outcome: Outcome, limit: int, record: bool) -> None:
        while self.next_index < limit and time.perf_counter() < self.stop_at:
            index = self.next_index
            self.next_index += 1
            if conn.lost or conn.closing:
                conn = await self._connect()
            started = self.last_sent_at = time.perf_counter()
            try:
                status, body = await asyncio.wait_for(conn.send(self.raw[index % len(self.raw)]), self.timeout_s)
            except TimeoutError:
                outcome.error("timeout")
                if conn.transport is not None:
                    conn.transport.close()
                conn.lost = True
                continue
            except (ConnectionError, HttpError, OSError) as exc:
                outcome.error(type(exc).__name__)
                conn.lost = True
                continue
            finished = time.perf_counter()
            if not record:
                continue
            outcome.latencies.append(finished - started)
            size = self.sizes[index % len(self.sizes)]
            if status != 200:
                outcome.error(f"http_{status}")
            elif _prediction_count(body) != size:
                outcome.error("wrong_prediction_count")
            else:
                outcome.done_at.append((finished, size))

    async def run(self, concurrency: int, requests: int, warmup: int, max_seconds: float = 0.0) -> dict[str, Any]:
        """`max_seconds` > 0: stop sending after that long, and give up on answers still missing
        `max_seconds` later (`abandoned`): a slow server at high concurrency cannot stall the run."""
        conns = await asyncio.gather(*(self._connect() for _ in range(concurrency)))
        warmup_texts = 0
        if warmup:
            self.next_index = 0
            await asyncio.gather(*(self._worker(c, Outcome(), warmup, False) for c in conns[:warmup]))
            warmup_texts = sum(self.sizes[i % len(self.sizes)] for i in range(warmup))
        outcome = Outcome()
        self.next_index = 0
        cpu0 = _cpu_seconds()
        started = time.perf_counter()
        if max_seconds > 0:
            self.stop_at = started + max_seconds
        workers = [asyncio.ensure_future(self._worker(c, outcome, requests, True)) for c in conns]
        _, pending = await asyncio.wait(workers, timeout=2 * max_seconds if max_seconds > 0 else None)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        finished = time.perf_counter()
        cpu = _cpu_seconds() - cpu0
        for conn in self.conns:
            if conn.transport is not None:
                conn.transport.close()
        sent = self.next_index
        summary = summarise(outcome, started, self.last_sent_at, finished, sent, cpu)
        return {**summary, "abandoned": len(pending), "time_capped": sent < requests, "warmup_texts": warmup_texts}


def _prediction_count(body: bytes) -> int:
    """Answers in a response: this service's `predictions`, or Infinity's `data` (one entry per input)."""
    try:
        answer = orjson.loads(body)
        return len(answer["predictions"] if "predictions" in answer else answer["data"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return -1


def as_api(lines: list[bytes], api: str) -> list[bytes]:
    """The same texts in another server's request shape (`infinity`: POST /classify {"input", "model"})."""
    if api == "service":
        return lines
    return [orjson.dumps({"input": orjson.loads(line)["texts"], "model": "sentiment"}) for line in lines]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def summarise(
    outcome: Outcome, started: float, last_sent: float, finished: float, requests: int, client_cpu_s: float
) -> dict[str, Any]:
    """Throughput, latency percentiles and errors of one run (`finished`: when the client stopped)."""
    texts = sum(n for _, n in outcome.done_at)
    last = max((t for t, _ in outcome.done_at), default=finished)
    wall = last - started
    lat = np.array(outcome.latencies) * 1000 if outcome.latencies else np.array([np.nan])
    return {
        "sentences_per_s": round(texts / wall, 2) if wall > 0 else 0.0,
        "send_window_s": round(last_sent - started, 3),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p95_ms": round(float(np.percentile(lat, 95)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "mean_ms": round(float(np.mean(lat)), 2),
        "errors": sum(outcome.errors.values()),
        "error_kinds": outcome.errors,
        "requests": requests,
        "ok_texts": texts,
        "wall_s": round(wall, 3),
        "client_cpu_ms_per_request": round(1000 * client_cpu_s / max(1, requests), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default=None, help="default: /predict (service API), /classify (infinity)")
    parser.add_argument("--api", choices=["service", "infinity"], default="service", help="request shape")
    parser.add_argument("--bodies", type=Path, required=True, help="JSON lines: one request body per line")
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=0, help="untimed requests first (at most one per connection)")
    parser.add_argument("--timeout", type=float, default=120.0, help="per-request timeout in seconds")
    parser.add_argument("--max-seconds", type=float, default=0.0, help="stop sending after this long (0: never)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    lines = args.bodies.read_bytes().splitlines()
    sizes = [len(orjson.loads(line)["texts"]) for line in lines]
    path = args.path or ("/classify" if args.api == "infinity" else "/predict")
    gen = LoadGenerator(args.host, args.port, path, as_api(lines, args.api), sizes, args.timeout)
    warmup = min(args.warmup, args.concurrency)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(gen.run(args.concurrency, args.requests, warmup, args.max_seconds))
    args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
