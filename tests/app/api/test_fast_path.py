"""The /predict fast path answers exactly as the FastAPI route behind it would: same bodies, same errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api.fast_path import PredictFastPath
from app.config import Settings
from app.lifecycle.service import load_configured
from app.main import create_app
from tests.helpers.app import TEST_SETTINGS, wait_ready

KEY = "fast-path-key"
JSON = {"content-type": "application/json"}
AUTH = {**JSON, "authorization": f"Bearer {KEY}"}

CASES: list[tuple[bytes, dict[str, str]]] = [
    (b'{"text": "a gripping film"}', AUTH),
    (b'{"texts": ["one", "two"], "raw_scores": true}', AUTH),
    (b'{"inputs": "tei shape"}', AUTH),
    (b'{"text": "x", "truncate": false}', AUTH),
    (b'{"text": "no key"}', JSON),
    (b'{"text": "wrong key"}', {**JSON, "authorization": "Bearer nope"}),
    (b'{"text": "basic"}', {**JSON, "authorization": "Basic Zm9vOmJhcg=="}),
    (b'{"text": ', AUTH),
    (b"\xff\xfe{}", AUTH),
    (b'{"text": "x"}', {**AUTH, "content-type": "text/plain"}),
    (b'{"text": "x"}', {"authorization": f"Bearer {KEY}"}),  # no content type
    (b'{"text": "x"}', {**AUTH, "content-type": "application/vnd.api+json"}),
    (b"{}", AUTH),
    (b'{"text": 5}', AUTH),
    (b'{"text": "a", "colour": "red"}', AUTH),
    (b'{"text": "bad \\ud800 surrogate"}', AUTH),
    (b"[1, 2]", AUTH),
    (b'{"text": "   "}', AUTH),
    (b'{"texts": ["x", "y", "z", "w", "v"]}', AUTH),  # over the 4-text limit below
    (b"[" * 2000 + b"]" * 2000, AUTH),
]


def _client(settings: Settings, fast: bool) -> TestClient:
    app = create_app(settings, load_configured(settings))
    if not fast:  # the same app with the FastAPI route answering instead
        app.user_middleware = [m for m in app.user_middleware if m.cls is not PredictFastPath]
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def clients(shared_models_dir: Path) -> Iterator[tuple[TestClient, TestClient]]:
    settings = Settings(models_dir=shared_models_dir, **{**TEST_SETTINGS, "api_key": KEY, "max_texts_per_request": 4})
    with _client(settings, fast=True) as fast, _client(settings, fast=False) as routed:
        wait_ready(fast)
        wait_ready(routed)
        yield fast, routed


def _shape(response: Any) -> tuple[int, Any]:
    body = response.json()
    if response.status_code != 200:
        return response.status_code, body["error_type"]
    preds = body["predictions"]
    return 200, [(p["label"], round(p["score"], 5), p["truncated"]) for p in preds]


@pytest.mark.parametrize(("body", "headers"), CASES)
def test_the_fast_path_answers_as_the_route_does(
    clients: tuple[TestClient, TestClient], body: bytes, headers: dict[str, str]
) -> None:
    fast, routed = clients
    ours = fast.post("/predict", content=body, headers=headers)
    theirs = routed.post("/predict", content=body, headers=headers)
    assert _shape(ours) == _shape(theirs), (ours.text[:300], theirs.text[:300])
    assert ours.headers.get("www-authenticate") == theirs.headers.get("www-authenticate")
    assert ours.headers["x-request-id"] and theirs.headers["x-request-id"]


def _layers(app: Any) -> list[str]:
    names, layer = [], app.middleware_stack
    while layer is not None and len(names) < 50:
        names.append(type(layer).__name__)
        layer = getattr(layer, "app", None)
    return names


def test_one_client_runs_the_fast_path_and_the_other_the_route(clients: tuple[TestClient, TestClient]) -> None:
    fast, routed = clients
    assert "PredictFastPath" in _layers(fast.app) and "PredictFastPath" not in _layers(routed.app)


def test_the_route_is_still_documented(clients: tuple[TestClient, TestClient]) -> None:
    fast, _ = clients
    operation = fast.get("/openapi.json").json()["paths"]["/predict"]["post"]
    assert {"401", "413", "422", "429", "503", "504"} <= set(operation["responses"])
