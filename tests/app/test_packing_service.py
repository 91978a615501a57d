"""The service with packed (padding-free) batches: chosen by recorded parity, visible, and answering as padded."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.helpers.models import build_spread_bert, publish_tiny

WORDS = ["film", "slow", "great", "awful", "plot", "a", "the", "moving", "dull", "cast", "ending", "brilliant"]
LONG_TEXT = "an endless parade of words " * 40  # over the 64-token test limit


def _record(agreement: float) -> dict[str, Any]:
    return {"agreement": agreement, "accuracy_delta": 0.0, "max_prob_diff": 1e-5}


@pytest.fixture(scope="module")
def packable_models_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """A tiny BERT whose logits differ from text to text, with a passing packed-vs-padded record for fp32."""
    root = tmp_path_factory.mktemp("packable-models")
    model = build_spread_bert(["negative", "positive"])
    publish_tiny(root, tokenizer, model=model, temperature=1.5, packing_parity={"fp32": _record(1.0)})
    return root


def _texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 45))) for _ in range(count)]
    return [*texts, LONG_TEXT]


def _predictions(client: TestClient, texts: list[str]) -> list[dict[str, Any]]:
    response = client.post("/predict", json={"texts": texts, "raw_scores": True})
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def test_auto_packs_a_model_whose_record_passes_and_says_so(
    make_client: Callable[..., TestClient], packable_models_dir: Path
) -> None:
    client = make_client(models_dir=packable_models_dir)
    assert client.get("/health").json()["layout"] == "packed"
    info = client.get("/v1/models").json()["models"][0]
    assert info["layout"] == "packed"
    assert info["packing"]["requested"] == "auto" and info["packing"]["parity"]["source"] == "manifest"
    assert 'layout="packed"' in client.get("/metrics").text


def test_packed_answers_equal_padded_answers(make_client: Callable[..., TestClient], packable_models_dir: Path) -> None:
    packed = make_client(models_dir=packable_models_dir)
    padded = make_client(models_dir=packable_models_dir, packing="off")
    assert padded.get("/health").json()["layout"] == "padded"
    texts = _texts(40)
    for a, b in zip(_predictions(packed, texts), _predictions(padded, texts), strict=True):
        assert a["label"] == b["label"] and a["truncated"] == b["truncated"]
        assert np.allclose(list(a["logits"].values()), list(b["logits"].values()), atol=1e-4)
    assert _predictions(packed, [LONG_TEXT])[0]["truncated"] is True


def test_concurrent_requests_batched_together_get_their_own_answers(
    make_client: Callable[..., TestClient], packable_models_dir: Path
) -> None:
    client = make_client(models_dir=packable_models_dir, max_wait_ms=20)
    texts = _texts(60, seed=1)
    alone = {text: _predictions(client, [text])[0] for text in texts}
    batches_before = _batches(client)
    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda t: _predictions(client, [t])[0], texts))
    assert _batches(client) - batches_before < len(texts)  # requests were batched, not run one by one
    for text, answer in zip(texts, together, strict=True):
        assert answer["label"] == alone[text]["label"]
        assert np.allclose(list(answer["logits"].values()), list(alone[text]["logits"].values()), atol=1e-4)
    metrics = client.get("/metrics").text

    def total(name: str) -> float:
        return float(next(line.split()[-1] for line in metrics.splitlines() if line.startswith(name + " ")))

    # A packed batch has no padding: the padding ratio is exactly 1.
    assert total("sentiment_padded_tokens_total") == total("sentiment_real_tokens_total") > 0


def _batches(client: TestClient) -> float:
    lines = client.get("/metrics").text.splitlines()
    return float(next(line.split()[-1] for line in lines if line.startswith("sentiment_batch_size_count")))


def test_a_record_below_the_bound_keeps_the_padded_path(
    make_client: Callable[..., TestClient], tokenizer: Any, tmp_path: Path
) -> None:
    publish_tiny(tmp_path / "models", tokenizer, packing_parity={"fp32": _record(0.9)})
    client = make_client(models_dir=tmp_path / "models", packing="on")
    packing = client.get("/v1/models").json()["models"][0]["packing"]
    assert packing["layout"] == "padded" and "below min_precision_agreement" in packing["reason"]
