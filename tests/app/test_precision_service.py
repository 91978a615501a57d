"""The service under each precision: the choice is visible, guarded by parity, and batching still holds."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from inference.hardware import parse_cpuinfo
from tests.helpers.cpus import EPYC_GENOA, SKYLAKE
from tests.helpers.models import build_spread_bert, publish_tiny

LONG_TEXT = "an endless parade of words " * 40  # over the 64-token test limit
TEXTS = ["Great.", "A slow, muddled and overlong film that forgets its own plot.", "Fine.", LONG_TEXT, "Meh"]


@pytest.fixture(scope="module")
def spread_models_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """A tiny BERT whose logits differ from text to text (see build_spread_bert)."""
    root = tmp_path_factory.mktemp("spread-models")
    publish_tiny(root, tokenizer, model=build_spread_bert(["negative", "positive"]), temperature=1.5)
    return root


def parity(agreement: float) -> dict[str, Any]:
    return {"agreement": agreement, "accuracy_delta": 0.0, "max_prob_diff": 0.01}


@pytest.fixture
def epyc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend to run on a CPU with native bf16 and VNNI, whatever this host is."""
    monkeypatch.setattr("inference.selection.cpu_features", lambda: parse_cpuinfo(EPYC_GENOA, "x86_64"))


def served(client: TestClient) -> tuple[str, dict[str, Any], str]:
    health = client.get("/health").json()
    (model,) = client.get("/v1/models").json()["models"]
    assert model["dtype"] == health["dtype"]
    return health["dtype"], model, client.get("/metrics").text


@pytest.mark.usefixtures("epyc")
def test_auto_serves_bf16_when_its_recorded_parity_passes(
    publish_tiny: Callable[..., Path], make_client: Callable[..., TestClient]
) -> None:
    version = publish_tiny(precision_parity={"bf16": parity(0.999), "int8": parity(0.999)})
    dtype, model, metrics = served(make_client(models_dir=version.parent.parent))
    assert dtype == "bf16"
    assert model["precision"]["requested"] == "auto" and model["precision"]["candidates"] == ["bf16", "int8", "fp32"]
    assert model["precision"]["parity"]["agreement"] == 0.999 and model["precision"]["parity"]["source"] == "manifest"
    assert model["precision_parity"]["int8"]["source"] == "manifest"
    assert 'sentiment_model_info{device="cpu",dtype="bf16",layout="padded",name="sentiment",version="1"} 1.0' in metrics


@pytest.mark.usefixtures("epyc")
def test_auto_refuses_a_precision_below_the_bound_and_says_so(
    publish_tiny: Callable[..., Path], make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    version = publish_tiny(precision_parity={"bf16": parity(0.9), "int8": parity(0.995)})
    with caplog.at_level(logging.INFO, logger="inference"):
        dtype, model, _ = served(make_client(models_dir=version.parent.parent))
    assert dtype == "int8"
    assert "bf16: recorded agreement 0.9000 with fp32 is below min_precision_agreement 0.99" in caplog.text
    assert "precision: requested auto -> int8 (int8 dynamic quantisation" in caplog.text
    assert model["precision"]["skipped"][0].startswith("bf16: recorded agreement 0.9000")

    dtype, _, _ = served(make_client(models_dir=version.parent.parent, min_precision_agreement=0.999))
    assert dtype == "fp32"


@pytest.mark.usefixtures("epyc")
def test_auto_never_picks_an_unmeasured_precision(make_client: Callable[..., TestClient]) -> None:
    dtype, model, _ = served(make_client())  # the shared tiny model records no parity
    assert dtype == "fp32"
    assert [s.split(":")[0] for s in model["precision"]["skipped"]] == ["bf16", "int8"]
    assert model["precision_parity"] is None


def test_a_cpu_without_fast_paths_serves_fp32(
    monkeypatch: pytest.MonkeyPatch, publish_tiny: Callable[..., Path], make_client: Callable[..., TestClient]
) -> None:
    monkeypatch.setattr("inference.selection.cpu_features", lambda: parse_cpuinfo(SKYLAKE, "x86_64"))
    version = publish_tiny(precision_parity={"bf16": parity(1.0), "int8": parity(1.0)})
    dtype, model, _ = served(make_client(models_dir=version.parent.parent))
    assert dtype == "fp32" and model["precision"]["candidates"] == ["fp32"]


def predictions(client: TestClient, texts: list[str]) -> list[dict[str, Any]]:
    response = client.post("/predict", json={"texts": texts, "raw_scores": True})
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def probabilities(client: TestClient, texts: list[str]) -> np.ndarray:
    body = client.post("/predict", json={"texts": texts}).json()
    return np.array([list(p["probabilities"].values()) for p in body["predictions"]])


# How far a text's logits may move between being batched with others (padded) and alone. bf16 rounds
# differently per matrix shape; int8 quantises activations with one scale per batch tensor, so a
# text's logits depend on its neighbours (docs/performance.md, "Precision"). This model's weights
# are deliberately large (see spread_models_dir), which exaggerates both.
@pytest.mark.parametrize(("dtype", "logit_atol"), [("fp32", 1e-4), ("bf16", 0.1), ("int8", 0.5)])
def test_batching_truncation_and_temperature_are_unchanged_by_precision(
    make_client: Callable[..., TestClient], spread_models_dir: Path, dtype: str, logit_atol: float
) -> None:
    client = make_client(models_dir=spread_models_dir, dtype=dtype)
    assert client.get("/health").json()["dtype"] == dtype
    together = predictions(client, TEXTS)  # one padded batch
    alone = [predictions(client, [text])[0] for text in TEXTS]  # one unpadded batch each
    for joint, single in zip(together, alone, strict=True):
        assert joint["truncated"] == single["truncated"]
        assert np.allclose(list(joint["logits"].values()), list(single["logits"].values()), atol=logit_atol)
    assert [p["truncated"] for p in together] == [text == LONG_TEXT for text in TEXTS]
    # Calibrated scores are softmax(logits / 1.5) (the manifest's temperature) computed from fp32
    # logits whatever the precision: the same batch gives exactly the same numbers.
    logits = np.array([list(p["logits"].values()) for p in together])
    scaled = np.exp(logits / 1.5 - (logits / 1.5).max(axis=1, keepdims=True))
    assert np.allclose(probabilities(client, TEXTS), scaled / scaled.sum(axis=1, keepdims=True), atol=1e-6)
