"""HTTP API against a tiny random BERT published in the real format."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.config import Settings
from app.lifecycle.service import load_configured
from app.main import create_app
from tests.helpers.app import TEST_SETTINGS, in_process_client, wait_ready

LONG_TEXT = "an endless parade of words " * 40  # well over the 64-token test limit


@pytest.fixture(scope="module")
def client(shared_models_dir: Path) -> Iterator[TestClient]:
    with in_process_client(shared_models_dir) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def reference(shared_models_dir: Path) -> Callable[[str], np.ndarray]:
    """The same model run one text at a time with plain transformers: logits of one text."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = shared_models_dir / "sentiment" / "1"
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True).eval()

    def logits(text: str) -> np.ndarray:
        with torch.inference_mode():
            encoded = tokenizer(text, truncation=True, max_length=TEST_SETTINGS["max_length"], return_tensors="pt")
            return model(**encoded).logits[0].numpy()

    return logits


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def assert_error(response: Any, status: int, error_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_type"} and body["error_type"] == error_type, body
    assert body["error"]
    return body


# ---- happy paths -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "count"),
    [
        ({"text": "A wonderful film."}, 1),
        ({"texts": ["A wonderful film.", "Dull.", "Fine, I guess."]}, 3),
        ({"inputs": "A wonderful film."}, 1),
        ({"inputs": ["A wonderful film.", "Dull."]}, 2),
    ],
)
def test_every_input_shape_is_answered_in_order(
    client: TestClient, reference: Callable[[str], np.ndarray], payload: dict[str, Any], count: int
) -> None:
    response = client.post("/predict", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"name": "sentiment", "version": 1}
    assert body["request_id"] == response.headers["x-request-id"]
    texts = [v for k in ("text", "texts", "inputs") for v in np.atleast_1d(payload.get(k, [])).tolist()]
    assert len(body["predictions"]) == count == len(texts)
    for text, pred in zip(texts, body["predictions"], strict=True):
        probs = softmax(reference(text) / 1.5)  # the manifest's temperature
        assert list(pred["probabilities"]) == ["negative", "positive"]
        assert np.allclose(list(pred["probabilities"].values()), probs, atol=1e-5)
        assert pred["label"] == ["negative", "positive"][int(np.argmax(probs))]
        assert pred["score"] == pytest.approx(float(probs.max()), abs=1e-5)
        assert pred["truncated"] is False and "logits" not in pred


def test_raw_scores_return_logits(client: TestClient, reference: Callable[[str], np.ndarray]) -> None:
    body = client.post("/predict", json={"texts": ["Great.", "Awful."], "raw_scores": True}).json()
    for text, pred in zip(["Great.", "Awful."], body["predictions"], strict=True):
        assert "probabilities" not in pred
        assert np.allclose(list(pred["logits"].values()), reference(text), atol=1e-5)
        assert pred["score"] == max(pred["logits"].values())


def test_long_texts_are_truncated_and_flagged(client: TestClient, reference: Callable[[str], np.ndarray]) -> None:
    body = client.post("/predict", json={"texts": [LONG_TEXT, "short"]}).json()
    assert [p["truncated"] for p in body["predictions"]] == [True, False]
    expected = softmax(reference(LONG_TEXT) / 1.5)
    assert np.allclose(list(body["predictions"][0]["probabilities"].values()), expected, atol=1e-5)


def test_request_truncate_false_refuses_long_texts(client: TestClient) -> None:
    response = client.post("/predict", json={"texts": ["short", LONG_TEXT], "truncate": False})
    assert "text 1" in assert_error(response, 413, "input_too_long")["error"]


def test_truncation_setting_reject_gives_413(make_client: Callable[..., TestClient]) -> None:
    strict = make_client(truncation="reject")
    assert_error(strict.post("/predict", json={"text": LONG_TEXT}), 413, "input_too_long")
    assert strict.post("/predict", json={"text": "short"}).status_code == 200
    assert strict.post("/predict", json={"text": LONG_TEXT, "truncate": True}).json()["predictions"][0]["truncated"]


def test_sane_request_ids_are_honoured_and_others_replaced(client: TestClient) -> None:
    mine = client.post("/predict", json={"text": "hi"}, headers={"X-Request-ID": "trace-42.a:b"})
    assert mine.headers["x-request-id"] == "trace-42.a:b" == mine.json()["request_id"]
    for bad in ("has space", "x" * 200, "semi;colon"):
        response = client.get("/health", headers={"X-Request-ID": bad})
        assert response.headers["x-request-id"] != bad
        assert len(response.headers["x-request-id"]) == 32


# ---- input errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "headers", "error_type"),
    [
        (b'{"text": ', {"content-type": "application/json"}, "invalid_json"),
        (b"\xff\xfe{}", {"content-type": "application/json"}, "invalid_json"),
        (b'{"text": "x"}', {"content-type": "text/plain"}, "invalid_request"),
        (b"{}", {"content-type": "application/json"}, "invalid_request"),
        (b'{"text": "a", "texts": ["b"]}', {"content-type": "application/json"}, "invalid_request"),
        (b'{"text": null, "texts": ["b"]}', {"content-type": "application/json"}, "invalid_request"),
        (b'{"text": 5}', {"content-type": "application/json"}, "invalid_request"),
        (b'{"texts": "not a list"}', {"content-type": "application/json"}, "invalid_request"),
        (b'{"text": "a", "colour": "red"}', {"content-type": "application/json"}, "invalid_request"),
        (b'{"text": "a", "timeout_s": -1}', {"content-type": "application/json"}, "invalid_request"),
        (b'{"text": "bad \\ud800 surrogate"}', {"content-type": "application/json"}, "invalid_request"),
        (b"[1, 2]", {"content-type": "application/json"}, "invalid_request"),
        (b'{"text": ""}', {"content-type": "application/json"}, "empty_input"),
        (b'{"text": "   "}', {"content-type": "application/json"}, "empty_input"),
        (b'{"texts": []}', {"content-type": "application/json"}, "empty_input"),
        (b'{"inputs": ["ok", ""]}', {"content-type": "application/json"}, "empty_input"),
    ],
)
def test_bad_bodies_get_422_with_a_type(
    client: TestClient, body: bytes, headers: dict[str, str], error_type: str
) -> None:
    assert_error(client.post("/predict", content=body, headers=headers), 422, error_type)


def test_too_many_texts_is_413(client: TestClient) -> None:
    limit = Settings(**TEST_SETTINGS).max_texts_per_request
    assert_error(client.post("/predict", json={"texts": ["x"] * (limit + 1)}), 413, "too_many_texts")


def test_body_limit_is_enforced_before_parsing(make_client: Callable[..., TestClient]) -> None:
    small = make_client(max_body_bytes=256)
    declared = small.post("/predict", json={"text": "y" * 400})  # Content-Length over the limit
    assert_error(declared, 413, "body_too_large")
    assert declared.headers["x-request-id"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"text": "'
        yield b"z" * 400
        yield b'"}'

    streamed = small.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert_error(streamed, 413, "body_too_large")
    assert small.post("/predict", json={"text": "fits"}).status_code == 200
    metrics = small.get("/metrics").text
    assert 'sentiment_rejections_total{reason="too_large"} 2.0' in metrics
    assert 'sentiment_requests_total{route="/predict",status="413"} 2.0' in metrics


def test_queue_full_is_429_with_retry_after(make_client: Callable[..., TestClient]) -> None:
    tight = make_client(queue_capacity=2)
    response = tight.post("/predict", json={"texts": ["a", "b", "c"]})
    assert_error(response, 429, "queue_full")
    assert response.headers["retry-after"] == "1"


def test_deadline_is_504(client: TestClient) -> None:
    assert_error(client.post("/predict", json={"text": "hurry", "timeout_s": 1e-9}), 504, "deadline_exceeded")


def test_failing_batch_is_a_typed_503_and_the_worker_keeps_serving(make_client: Callable[..., TestClient]) -> None:
    def faulty(forward: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(batch: Any) -> Any:
            if (batch.input_ids == trigger).any():
                raise RuntimeError("simulated device fault")
            return forward(batch)

        return wrapped

    trigger = 15044  # "explode" in the bert-base-uncased vocabulary
    served = make_client(wrap_forward=faulty)
    assert served.app.state.service.loaded.tokenizer.encode("explode").ids[1] == trigger  # type: ignore[attr-defined]
    assert_error(served.post("/predict", json={"text": "explode"}), 503, "inference_failed")
    assert served.post("/predict", json={"text": "calm"}).status_code == 200
    assert 'sentiment_rejections_total{reason="inference_failed"} 1.0' in served.get("/metrics").text


# ---- API key -----------------------------------------------------------------------------------
def test_api_key_guards_predict_and_models_only(make_client: Callable[..., TestClient]) -> None:
    guarded = make_client(api_key="s3cret")
    for path, method in (("/predict", "post"), ("/v1/models", "get")):
        kwargs: dict[str, Any] = {"json": {"text": "hi"}} if method == "post" else {}
        missing = getattr(guarded, method)(path, **kwargs)
        assert_error(missing, 401, "unauthorized")
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = getattr(guarded, method)(path, headers={"Authorization": "Bearer nope"}, **kwargs)
        assert_error(wrong, 401, "unauthorized")
        scheme = getattr(guarded, method)(path, headers={"Authorization": "Basic s3cret"}, **kwargs)
        assert_error(scheme, 401, "unauthorized")
        right = getattr(guarded, method)(path, headers={"Authorization": "Bearer s3cret"}, **kwargs)
        assert right.status_code == 200
    for open_path in ("/health", "/health/ready", "/health/live", "/metrics"):
        assert guarded.get(open_path).status_code == 200


# ---- health, models, metrics ----------------------------------------------------------------------
def test_health_reports_the_model_when_ready(client: TestClient) -> None:
    for path in ("/health", "/health/ready"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json() == {
            "status": "ready",
            "queue_depth": 0,
            "model": {"name": "sentiment", "version": 1},
            "device": "cpu",
            "dtype": "fp32",
            "layout": "padded",  # no packed-vs-padded parity is recorded for this tiny model
        }
    assert client.get("/health/live").json() == {"status": "alive"}


def test_not_ready_until_warm_then_ready(make_settings: Callable[..., Settings]) -> None:
    release = threading.Event()
    settings = make_settings()
    loaded = load_configured(settings)
    forward = loaded.forward

    def gated(batch: Any) -> Any:
        release.wait(10)
        return forward(batch)

    loaded.forward = gated
    with TestClient(create_app(settings, loaded)) as warming:
        response = warming.get("/health")
        assert response.status_code == 503 and response.json()["status"] == "warming"
        assert warming.get("/health/live").status_code == 200
        assert_error(warming.post("/predict", json={"text": "too early"}), 503, "not_ready")
        assert_error(warming.get("/v1/models"), 503, "not_ready")
        release.set()
        wait_ready(warming)
        assert warming.post("/predict", json={"text": "now"}).status_code == 200


def test_missing_model_behind_uvicorn_app_reports_failed(tmp_path: Path) -> None:
    settings = Settings(models_dir=tmp_path, **TEST_SETTINGS)
    with TestClient(create_app(settings)) as failing:
        for _ in range(200):
            body = failing.get("/health").json()
            if body["status"] != "loading":
                break
            threading.Event().wait(0.01)
        assert body["status"] == "failed" and "sentiment-train" in body["error"]
        assert failing.get("/health").status_code == 503


def test_draining_refuses_new_work_with_503(make_client: Callable[..., TestClient]) -> None:
    draining = make_client()
    service = draining.app.state.service  # type: ignore[attr-defined]
    assert draining.portal.call(service.drain, 1.0) is True  # type: ignore[union-attr]
    health = draining.get("/health")
    assert health.status_code == 503 and health.json()["status"] == "draining"
    assert_error(draining.post("/predict", json={"text": "late"}), 503, "draining")
    assert draining.get("/v1/models").status_code == 200  # still describes what it serves


def test_models_lists_labels_version_and_manifest_summary(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    (model,) = body["models"]
    assert model["name"] == "sentiment" and model["version"] == 1
    assert model["labels"] == ["negative", "positive"]
    assert model["temperature"] == 1.5 and model["max_length"] == 64
    assert model["base_model"] == {"name_or_path": "tiny-random-bert"}
    assert model["metrics"] == {"accuracy": 0.5}
    assert model["created_at"] and (model["device"], model["dtype"]) == ("cpu", "fp32")


def test_metrics_exposes_the_contract_names(client: TestClient) -> None:
    client.post("/predict", json={"texts": ["one", "two"]})
    client.post("/predict", json={"text": ""})
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        "sentiment_requests_total",
        "sentiment_request_duration_seconds",
        "sentiment_queue_wait_seconds",
        "sentiment_tokenize_duration_seconds",
        "sentiment_inference_duration_seconds",
        "sentiment_batch_size",
        "sentiment_batch_tokens",
        "sentiment_padded_tokens_total",
        "sentiment_real_tokens_total",
        "sentiment_inputs_total",
        "sentiment_queue_depth",
        "sentiment_rejections_total",
        "sentiment_model_info",
        "sentiment_model_swaps_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')} " in text or f"# TYPE {name} " in text, name
    assert 'sentiment_requests_total{route="/predict",status="200"}' in text
    assert 'sentiment_requests_total{route="/predict",status="422"}' in text
    assert 'sentiment_model_info{device="cpu",dtype="fp32",layout="padded",name="sentiment",version="1"} 1.0' in text
    assert "sentiment_gpu_memory" not in text  # CPU: no GPU gauges


def test_metrics_pass_promtool(client: TestClient) -> None:
    # promtool comes with Debian's prometheus package, which .ci/run installs (scripts/ci/install-system.sh).
    assert shutil.which("promtool"), "promtool missing: run scripts/ci/install-system.sh prometheus"
    client.post("/predict", json={"texts": ["one", "two"]})
    client.post("/predict", json={"texts": []})
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=client.get("/metrics").text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_routes_use_the_error_shape(client: TestClient) -> None:
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/predict"), 405, "method_not_allowed")
    assert 'sentiment_requests_total{route="unmatched",status="404"}' in client.get("/metrics").text


def test_openapi_documents_every_status(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/predict"]["post"]["responses"]) == {"200", "401", "413", "422", "429", "503", "504"}
    assert set(paths["/v1/models"]["get"]["responses"]) == {"200", "401", "503"}
    assert set(paths["/health"]["get"]["responses"]) == {"200", "503"}
    error_schema = paths["/predict"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    assert error_schema == {"$ref": "#/components/schemas/ErrorResponse"}


def test_drain_timeout_answers_leftovers_with_503(make_client: Callable[..., TestClient]) -> None:
    release, entered = threading.Event(), threading.Event()
    release.set()

    def gated(forward: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(batch: Any) -> Any:
            entered.set()
            release.wait(10)
            return forward(batch)

        return wrapped

    stuck = make_client(wrap_forward=gated)
    release.clear()
    entered.clear()
    answers: list[Any] = []
    caller = threading.Thread(target=lambda: answers.append(stuck.post("/predict", json={"text": "slow"})))
    caller.start()
    assert entered.wait(10)
    service = stuck.app.state.service  # type: ignore[attr-defined]
    assert stuck.portal.call(service.drain, 0.2) is False  # type: ignore[union-attr]
    caller.join(10)
    release.set()
    assert_error(answers[0], 503, "draining")
