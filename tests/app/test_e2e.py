"""End to end: `sentiment-serve` as a real process on 127.0.0.1, concurrent load, parity, drain."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.serve import ServeProcess, start_serve

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

MAX_LENGTH = 128
WORDS = ["the", "a", "film", "movie", "plot", "actor", "great", "awful", "boring", "brilliant", "scene", "slow", "dull"]


@pytest.fixture
def server(publish_tiny: Callable[..., Path], tmp_path: Path) -> Iterator[ServeProcess]:
    version_dir = publish_tiny(temperature=1.3)
    args = ["--max-length", str(MAX_LENGTH), "--drain-timeout-s", "20"]
    server = start_serve(version_dir.parent.parent, tmp_path, *args)
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def reference(publish_tiny: Callable[..., Path], tmp_path: Path) -> Callable[[str], tuple[np.ndarray, bool]]:
    """The published model with plain transformers, one text at a time: (probabilities, truncated)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = tmp_path / "models" / "sentiment" / "1"
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True).eval()
    cache: dict[str, tuple[np.ndarray, bool]] = {}

    def run(text: str) -> tuple[np.ndarray, bool]:
        if text not in cache:
            with torch.inference_mode():
                encoded = tokenizer(text, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
                probs = torch.softmax(model(**encoded).logits[0] / 1.3, dim=-1).numpy()
            cache[text] = (probs, len(tokenizer(text)["input_ids"]) > MAX_LENGTH)
        return cache[text]

    return run


def make_pool(size: int = 160) -> list[str]:
    """Texts of mixed lengths (some over the 128-token limit); a finite pool keeps the reference cheap."""
    rng = random.Random(3)
    lengths = [1, 3, 8, 15, 30, 60, 100, 180]
    return [
        " ".join(rng.choice(WORDS) for _ in range(lengths[i % len(lengths)])) + rng.choice(".!?") for i in range(size)
    ]


POOL = make_pool()


def random_payload(rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    texts = [rng.choice(POOL) for _ in range(rng.choice([1, 1, 2, 5, 8]))]
    shape = rng.choice(["text", "texts", "inputs"]) if len(texts) == 1 else rng.choice(["texts", "inputs"])
    return {shape: texts[0] if shape == "text" else texts}, texts


def check_answer(body: dict[str, Any], texts: list[str], reference: Callable[[str], tuple[np.ndarray, bool]]) -> None:
    assert len(body["predictions"]) == len(texts)
    for text, pred in zip(texts, body["predictions"], strict=True):
        probs, truncated = reference(text)
        assert pred["label"] == ["negative", "positive"][int(np.argmax(probs))]
        assert np.allclose(list(pred["probabilities"].values()), probs, atol=1e-4)
        assert pred["score"] == pytest.approx(float(probs.max()), abs=1e-4)
        assert pred["truncated"] is truncated


async def test_concurrent_load_matches_one_at_a_time_and_drains_on_sigterm(
    server: ServeProcess, reference: Callable[[str], tuple[np.ndarray, bool]]
) -> None:
    rng = random.Random(7)
    payloads = [random_payload(rng) for _ in range(300)]
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
        # ---- phase 1: a few hundred concurrent requests, every answer checked ----
        gate = asyncio.Semaphore(48)

        async def send(payload: dict[str, Any]) -> httpx.Response:
            async with gate:
                return await client.post("/predict", json=payload)

        responses = await asyncio.gather(*(send(p) for p, _ in payloads))
        for response, (_, texts) in zip(responses, payloads, strict=True):
            assert response.status_code == 200, response.text
            check_answer(response.json(), texts, reference)

        # ---- phase 2: metrics agree with what was sent, and batching happened ----
        families = {f.name: f for f in text_string_to_metric_families((await client.get("/metrics")).text)}
        sent_texts = sum(len(texts) for _, texts in payloads)
        assert families["sentiment_inputs"].samples[0].value == sent_texts
        batches = next(s.value for s in families["sentiment_batch_size"].samples if s.name.endswith("_count"))
        assert batches < sent_texts  # inputs shared forward passes
        requests = {
            (s.labels["route"], s.labels["status"]): s.value
            for s in families["sentiment_requests"].samples
            if s.name == "sentiment_requests_total"
        }
        assert requests[("/predict", "200")] == len(payloads)
        padded = families["sentiment_padded_tokens"].samples[0].value
        real = families["sentiment_real_tokens"].samples[0].value
        assert real <= padded < 3 * real

    # ---- phase 3: SIGTERM under load ----
    # (began, ended, outcome, texts, body); answers are checked afterwards so checking never slows the load.
    outcomes: list[tuple[float, float, str, list[str], Any]] = []
    stop, flowing = asyncio.Event(), asyncio.Event()

    async def worker(client: httpx.AsyncClient, seed: int) -> None:
        wrng = random.Random(seed)
        while not stop.is_set():
            payload, texts = random_payload(wrng)
            began = time.monotonic()
            try:
                response = await client.post("/predict", json=payload)
            except httpx.TransportError as exc:  # refused, or a kept-alive connection closed at exit
                outcomes.append((began, time.monotonic(), type(exc).__name__, texts, None))
                if isinstance(exc, httpx.ConnectError):
                    return
                continue
            outcomes.append((began, time.monotonic(), str(response.status_code), texts, response.json()))
            if len(outcomes) >= 40:
                flowing.set()

    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
        workers = [asyncio.create_task(worker(client, i)) for i in range(48)]
        await asyncio.wait_for(flowing.wait(), 30)  # load is flowing
        term_sent = time.monotonic()
        os.kill(server.process.pid, signal.SIGTERM)
        exit_code = await asyncio.to_thread(server.process.wait, 40)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), 30)

    log = server.log()
    assert exit_code == 0, log
    assert "drained: every admitted request was answered" in log
    assert "Traceback" not in log
    answered = [o for o in outcomes if o[2] == "200"]
    assert sum(1 for o in answered if o[1] < term_sent) >= 40  # the server really was under load
    assert any(o[1] > term_sent for o in answered)  # and requests in flight at SIGTERM were finished
    for _, _, _, texts, body in answered:
        check_answer(body, texts, reference)
    refused = [o for o in outcomes if o[2] != "200"]
    assert refused, "no request was turned away during the drain"
    for _, ended, outcome, _, body in refused:
        assert ended > term_sent, f"{outcome} before SIGTERM"
        assert outcome in {"503", "ConnectError", "RemoteProtocolError", "ReadError"}, (outcome, body)
        if outcome == "503":
            assert body["error_type"] == "draining"
