"""A stand-in for the real model, for tests of the batching engine and the HTTP layer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from inference.errors import OutOfMemory
from inference.tokens import Tokenized


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

    def tokenize(self, texts: Sequence[str], chunk: bool = False) -> Tokenized:
        if chunk:  # disjoint windows of max_length characters (the real model's overlap is not the point here)
            parts = [fake_windows(t, self.max_length) for t in texts]
            ids = [[ord(c) for c in w] for windows in parts for w in windows]
            windows = [len(p) for p in parts]
            return Tokenized(ids, [len(x) for x in ids], [False] * len(texts), windows)
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


class EchoApp:
    """A minimal ASGI app for tests of the HTTP edge alone (uvicorn and its protocol; no model): every
    request gets 200 JSON. Remembers the event loop it serves on, so a test can schedule work there."""

    def __init__(self) -> None:
        import asyncio

        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:  # type: ignore[type-arg]
        import asyncio
        import json

        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.loop = asyncio.get_running_loop()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        length = 0
        while True:
            message = await receive()
            length += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = json.dumps({"ok": True, "received": length}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def fake_windows(text: str, size: int) -> list[str]:
    """How FakeModel cuts a text in chunk mode."""
    return [text[i : i + size] for i in range(0, max(len(text), 1), size)]
