"""Truncation modes over HTTP: `chunk` scores a long text as overlapping windows and answers their
length-weighted mean, within the same limits as everything else."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from tests.helpers.app import TEST_SETTINGS, in_process_client

LONG_TEXT = "an endless parade of words that never quite says anything " * 12  # ~120 tokens, limit 64
TEMPERATURE = 1.5  # the shared tiny model's manifest


@pytest.fixture(scope="module")
def client(shared_models_dir: Path) -> Iterator[TestClient]:
    with in_process_client(shared_models_dir) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def window_logits(shared_models_dir: Path) -> Callable[[str], tuple[np.ndarray, list[int]]]:
    """Each window of a text run alone through plain transformers: (logits per window, window lengths)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from inference.tokens import encode_windows, serving_tokenizer, windowing_tokenizer

    path = shared_models_dir / "sentiment" / "1"
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True).eval()
    limit = TEST_SETTINGS["max_length"]
    windowing = windowing_tokenizer(serving_tokenizer(tokenizer, limit), limit)

    def run(text: str) -> tuple[np.ndarray, list[int]]:
        tok = encode_windows(windowing, [text])
        with torch.inference_mode():
            rows = [model(input_ids=torch.tensor([list(ids)])).logits[0].numpy() for ids in tok.ids]
        return np.stack(rows), tok.lengths

    return run


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def predictions(client: TestClient, **body: Any) -> list[dict[str, Any]]:
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def error(response: Any, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error_type"] == error_type
    return response.json()["error"]


def test_chunk_answers_the_length_weighted_mean_of_the_windows(
    client: TestClient, window_logits: Callable[[str], tuple[np.ndarray, list[int]]]
) -> None:
    logits, lengths = window_logits(LONG_TEXT)
    assert len(lengths) >= 2 and lengths[-1] < lengths[0]  # a full window, then a shorter tail
    expected = (softmax(logits / TEMPERATURE) * np.array(lengths)[:, None]).sum(axis=0) / sum(lengths)
    (pred,) = predictions(client, text=LONG_TEXT, truncation="chunk")
    assert pred["windows"] == len(lengths) and pred["truncated"] is False
    assert np.allclose(list(pred["probabilities"].values()), expected, atol=1e-5)
    assert pred["label"] == ["negative", "positive"][int(expected.argmax())]
    (raw,) = predictions(client, text=LONG_TEXT, truncation="chunk", raw_scores=True)
    expected_logits = (logits * np.array(lengths)[:, None]).sum(axis=0) / sum(lengths)
    assert np.allclose(list(raw["logits"].values()), expected_logits, atol=1e-5)


def test_short_texts_answer_the_same_in_every_mode(client: TestClient) -> None:
    texts = ["A wonderful film.", "Dull.", "Fine, I guess."]
    plain = predictions(client, texts=texts)
    assert predictions(client, texts=texts, truncation="chunk") == plain
    assert predictions(client, texts=texts, truncation="reject") == plain
    assert [p["windows"] for p in plain] == [1, 1, 1]


def test_texts_keep_their_order_around_a_chunked_one(client: TestClient) -> None:
    texts = ["first", LONG_TEXT, "third", LONG_TEXT + " and more"]
    chunked = predictions(client, texts=texts, truncation="chunk")
    assert [p["windows"] > 1 for p in chunked] == [False, True, False, True]
    alone = [predictions(client, text=t, truncation="chunk")[0] for t in texts]
    for together, single in zip(chunked, alone, strict=True):
        assert together["probabilities"] == pytest.approx(single["probabilities"], abs=1e-6)


def test_truncation_modes_and_the_older_truncate_flag(client: TestClient) -> None:
    (cut,) = predictions(client, text=LONG_TEXT)  # the server default: truncate
    assert cut["truncated"] is True and cut["windows"] == 1
    assert predictions(client, text=LONG_TEXT, truncate=True) == [cut]
    assert predictions(client, text=LONG_TEXT, truncation="truncate") == [cut]
    assert "text 0" in error(
        client.post("/predict", json={"text": LONG_TEXT, "truncate": False}), 413, "input_too_long"
    )
    error(client.post("/predict", json={"text": LONG_TEXT, "truncation": "reject"}), 413, "input_too_long")
    both = client.post("/predict", json={"text": "x", "truncation": "chunk", "truncate": True})
    assert "not both" in error(both, 422, "invalid_request")
    assert "'chunk'" in error(
        client.post("/predict", json={"text": "x", "truncation": "windows"}), 422, "invalid_request"
    )


def test_chunk_as_the_server_default(make_client: Callable[..., TestClient]) -> None:
    chunking = make_client(truncation="chunk")
    (pred,) = chunking.post("/predict", json={"text": LONG_TEXT}).json()["predictions"]
    assert pred["windows"] > 1 and not pred["truncated"]
    (cut,) = chunking.post("/predict", json={"text": LONG_TEXT, "truncation": "truncate"}).json()["predictions"]
    assert cut["windows"] == 1 and cut["truncated"]


def test_windows_are_bounded_per_request_and_by_the_queue(make_client: Callable[..., TestClient]) -> None:
    small = make_client(max_windows_per_request=3, queue_capacity=4)
    many = small.post("/predict", json={"texts": [LONG_TEXT, LONG_TEXT], "truncation": "chunk"})
    message = error(many, 413, "too_many_windows")
    assert "limit per request is 3" in message
    over_queue = make_client(queue_capacity=2)
    full = over_queue.post("/predict", json={"text": LONG_TEXT * 2, "truncation": "chunk"})
    error(full, 429, "queue_full")
    assert full.headers["retry-after"] == "1"
    assert over_queue.post("/predict", json={"text": LONG_TEXT * 2}).status_code == 200  # truncated: one input
    metrics = small.get("/metrics").text
    assert 'sentiment_rejections_total{reason="too_large"} 1.0' in metrics
