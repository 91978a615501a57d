"""Zero-downtime model swap over HTTP: swaps under continuous concurrent load, failures, one at a time."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from app.lifecycle.service import load_configured
from app.main import create_app
from store.model_store import ModelStore
from tests.helpers.app import live_server
from tests.helpers.models import BROKEN_VERSION

ADMIN = {"Authorization": "Bearer admin-key"}
API = {"Authorization": "Bearer api-key"}
TEXTS = [
    "A gripping, beautifully shot film.",
    "Two hours I will never get back.",
    "fine",
    "The plot meanders but the performances carry it through to a satisfying end.",
    "Dull.",
    "An instant classic with a score that lingers for days after the credits roll.",
]


def reference_logits(settings: Any, version: int) -> np.ndarray:
    """Logits of every TEXTS entry from `version`, one text per forward pass (no batching involved)."""
    from inference.classifier import TextClassifier

    classifier = TextClassifier(load_configured(settings.model_copy(update={"version": str(version)})))
    return np.stack([classifier.predict(classifier.collate(classifier.tokenize([t]).ids))[0] for t in TEXTS])


def metric(text: str, line_start: str) -> float:
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    return sum(values)


@pytest.mark.anyio
async def test_swaps_under_load_fail_no_request_and_answers_name_the_version_that_ran(
    swap_store: Path, make_settings: Callable[..., Any]
) -> None:
    ModelStore(swap_store).set_alias("sentiment", "production", 2)
    # Small batches: a six-text request spans several batches, so a swap can fall in the middle of one.
    settings = make_settings(models_dir=swap_store, version="1", admin_api_key="admin-key", max_batch_size=4)
    references = {v: reference_logits(settings, v) for v in (1, 2, 4)}
    assert min(np.abs(references[a] - references[b]).max() for a in references for b in references if a < b) > 1e-3

    answers: list[tuple[float, float, int, list[int], list[list[float]]]] = []
    failures: list[str] = []
    # (moment the admin call began, moment it answered, target, answer)
    swaps: list[tuple[float, float, str, httpx.Response]] = []

    with live_server(create_app(settings, load_configured(settings))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for _ in range(500):
                if (await client.get("/health")).status_code == 200:
                    break
                await asyncio.sleep(0.02)
            stop = asyncio.Event()

            async def load(worker: int) -> None:
                k = 0
                while not stop.is_set():
                    picks = [(worker + k + j) % len(TEXTS) for j in range(1 + (worker + k) % len(TEXTS))]
                    k += 1
                    started = time.monotonic()
                    body = {"texts": [TEXTS[i] for i in picks], "raw_scores": True}
                    response = await client.post("/predict", json=body)
                    ended = time.monotonic()
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text}")
                        continue
                    body = response.json()
                    logits = [[p["logits"][label] for label in ("negative", "positive")] for p in body["predictions"]]
                    answers.append((started, ended, body["model"]["version"], picks, logits))

            workers = [asyncio.create_task(load(w)) for w in range(8)]
            for target in ("2", str(BROKEN_VERSION), "4", "production", "1"):
                await asyncio.sleep(0.4)
                began = time.monotonic()
                response = await client.post("/v1/models/reload", json={"version": target}, headers=ADMIN)
                swaps.append((began, time.monotonic(), target, response))
                assert (await client.get("/health")).status_code == 200  # ready throughout, also after a failure
            await asyncio.sleep(0.4)
            stop.set()
            await asyncio.gather(*workers)
            health = (await client.get("/health")).json()
            metrics = (await client.get("/metrics")).text

    assert not failures, failures[:5]
    assert len(answers) > 100

    outcomes = [(target, r.status_code, r.json().get("outcome") or r.json()["error_type"]) for _, _, target, r in swaps]
    assert outcomes == [
        ("2", 200, "success"),
        (str(BROKEN_VERSION), 422, "model_invalid"),
        ("4", 200, "success"),
        ("production", 200, "success"),
        ("1", 200, "success"),
    ]
    assert "model.safetensors" in swaps[1][3].json()["error"]
    assert all(r.json()["previous_released"] for _, _, _, r in swaps if r.status_code == 200)
    assert swaps[3][3].json()["model"] == {"name": "sentiment", "version": 2}

    # When each version may have been active: from the start of the call that moved to it until the
    # answer of the call that moved away (the switch itself falls somewhere inside each call).
    windows: list[tuple[int, float, float]] = []
    active, since = 1, 0.0
    for began, ended, _, response in swaps:
        if response.status_code == 200:
            windows.append((active, since, ended))
            active, since = response.json()["model"]["version"], began
    windows.append((active, since, float("inf")))

    served = {v: 0 for v in references}
    for started, ended, version, picks, logits in answers:
        assert version != BROKEN_VERSION
        assert any(v == version and s <= ended and started <= e for v, s, e in windows), (version, started, ended)
        # The version named is the model that computed every prediction of the request.
        distances = {v: float(np.abs(ref[picks] - np.array(logits)).max()) for v, ref in references.items()}
        assert min(distances, key=distances.__getitem__) == version and distances[version] < 1e-3, distances
        served[version] += 1
    assert all(count > 0 for count in served.values()), served

    assert health["status"] == "ready" and health["model"]["version"] == 1
    assert metric(metrics, 'sentiment_model_swaps_total{outcome="success"}') == 4
    assert metric(metrics, 'sentiment_model_swaps_total{outcome="invalid"}') == 1
    info = [line for line in metrics.splitlines() if line.startswith("sentiment_model_info{")]
    assert len(info) == 1 and 'version="1"' in info[0]


@pytest.fixture
def admin_client(swap_store: Path, make_client: Callable[..., Any]) -> Any:
    return make_client(models_dir=swap_store, version="1", admin_api_key="admin-key")


def test_a_second_swap_while_one_runs_gets_409(admin_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    entered, release = threading.Event(), threading.Event()
    service = admin_client.app.state.service
    real_load = service.load

    def held_load(version: Any = None) -> Any:
        entered.set()
        assert release.wait(30)
        return real_load(version)

    monkeypatch.setattr(service, "load", held_load)
    first: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: first.update(r=admin_client.post("/v1/models/reload", json={"version": 2}, headers=ADMIN))
    )
    thread.start()
    try:
        assert entered.wait(10)
        second = admin_client.post("/v1/models/reload", json={"version": 4}, headers=ADMIN)
        assert second.status_code == 409 and second.json()["error_type"] == "swap_in_progress"
        assert admin_client.post("/predict", json={"text": "still served"}).json()["model"]["version"] == 1
    finally:
        release.set()
        thread.join(30)
    assert first["r"].status_code == 200 and first["r"].json()["model"]["version"] == 2
    assert admin_client.get("/health").json()["model"]["version"] == 2
    assert admin_client.get("/v1/models").json()["models"][0]["version"] == 2
    assert 'sentiment_model_swaps_total{outcome="in_progress"} 1.0' in admin_client.get("/metrics").text


def test_a_swap_that_would_not_fit_in_memory_is_refused(admin_client: Any) -> None:
    probed: list[str] = []

    def nearly_full(device: str) -> int:
        probed.append(device)
        return 1 << 20  # 1 MiB free: not even the tiny model's weights fit

    admin_client.app.state.swapper.probe = nearly_full
    response = admin_client.post("/v1/models/reload", json={"version": "latest"}, headers=ADMIN)
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error_type"] == "insufficient_memory"
    assert "MiB" in body["error"] and "still serving version 1" in body["error"]
    assert probed == ["cpu"]
    assert admin_client.get("/health").json()["status"] == "ready"
    assert admin_client.post("/predict", json={"text": "fine"}).json()["model"]["version"] == 1
    assert 'sentiment_model_swaps_total{outcome="insufficient_memory"} 1.0' in admin_client.get("/metrics").text


def test_a_version_that_fails_its_warm_up_never_serves(admin_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    service = admin_client.app.state.service

    def failing_warm_up(classifier: Any) -> None:
        raise RuntimeError(f"kernel failure in version {classifier.loaded.source.version}")

    monkeypatch.setattr(service, "warm_up", failing_warm_up)
    response = admin_client.post("/v1/models/reload", json={"version": 2}, headers=ADMIN)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error_type"] == "model_invalid"
    assert "warm-up" in body["error"] and "kernel failure in version 2" in body["error"]
    health = admin_client.get("/health").json()
    assert health["status"] == "ready" and health["model"]["version"] == 1
    assert admin_client.post("/predict", json={"text": "fine"}).json()["model"]["version"] == 1
    assert 'sentiment_model_swaps_total{outcome="warmup_failed"} 1.0' in admin_client.get("/metrics").text


def test_unknown_target_is_404_and_the_active_version_is_unchanged(admin_client: Any) -> None:
    missing = admin_client.post("/v1/models/reload", json={"version": "canary"}, headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error_type"] == "model_not_found"
    same = admin_client.post("/v1/models/reload", json={"version": 1}, headers=ADMIN)
    assert same.status_code == 200 and same.json()["outcome"] == "unchanged"
    bad = admin_client.post("/v1/models/reload", json={"version": "../2"}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["error_type"] == "invalid_request"


@pytest.mark.parametrize(
    ("keys", "headers", "status", "error_type"),
    [
        ({}, ADMIN, 403, "admin_disabled"),
        ({"api_key": "api-key"}, {}, 401, "unauthorized"),
        ({"api_key": "api-key"}, API, 200, None),
        ({"api_key": "api-key", "admin_api_key": "admin-key"}, API, 401, "unauthorized"),
        ({"api_key": "api-key", "admin_api_key": "admin-key"}, ADMIN, 200, None),
    ],
)
def test_reload_needs_the_admin_key_and_is_off_without_one(
    make_client: Callable[..., Any], keys: dict[str, str], headers: dict[str, str], status: int, error_type: str | None
) -> None:
    client = make_client(**keys)  # the shared store: version 1 only, so an allowed call answers "unchanged"
    response = client.post("/v1/models/reload", json={"version": 1}, headers=headers)
    assert response.status_code == status, response.text
    if error_type is not None:
        assert response.json()["error_type"] == error_type
