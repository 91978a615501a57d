"""Shadow scoring: a candidate scores live traffic off the response path, capped, compared with the active one."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.quality.shadow import BURST_CPU_S
from tests.app.quality.conftest import ALTERED_WEIGHTS, INTACT, OTHER
from tests.helpers.models import publish_tiny

ADMIN = {"Authorization": "Bearer admin-key"}
TEXTS = ["A gripping film.", "Dull.", "Fine", "An instant classic with a score that lingers."]


@pytest.fixture
def client(canary_store: Path, make_client: Callable[..., Any]) -> Any:
    return make_client(models_dir=canary_store, version=str(INTACT), admin_api_key="admin-key")


def wait_scored(client: Any, inputs: int, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        shadow = client.get("/v1/models/shadow").json()["shadow"]
        if shadow["inputs"]["scored"] + shadow["inputs"]["dropped"] >= inputs or time.monotonic() > deadline:
            return shadow
        time.sleep(0.05)


def test_a_candidate_scores_live_traffic_and_is_compared(client: Any) -> None:
    started = client.post("/v1/models/shadow", json={"version": OTHER, "share": 1.0}, headers=ADMIN)
    assert started.status_code == 200, started.text
    assert started.json()["outcome"] == "started" and started.json()["canary"]["status"] == "passed"
    answers = [client.post("/predict", json={"texts": TEXTS}).json() for _ in range(5)]
    assert {a["model"]["version"] for a in answers} == {INTACT}  # the shadow never answers
    shadow = wait_scored(client, 20)
    assert shadow["version"] == OTHER and shadow["inputs"]["scored"] == 20 and 0 <= shadow["agreement"] <= 1
    assert client.get("/v1/models").json()["models"][0]["shadow"]["version"] == OTHER
    metrics = client.get("/metrics").text
    assert f'sentiment_shadow_inputs_total{{candidate="{OTHER}",outcome="scored"}} 20.0' in metrics
    assert f'sentiment_shadow_info{{candidate="{OTHER}"}} 1.0' in metrics
    assert f'sentiment_shadow_agreements_total{{candidate="{OTHER}"}}' in metrics
    # Feedback on shadow-scored answers counts the accuracy of both versions on the same inputs.
    rid = answers[0]["request_id"]
    label = answers[0]["predictions"][0]["label"]
    assert client.post("/feedback", json={"request_id": rid, "index": 0, "label": label}).status_code == 200
    metrics = client.get("/metrics").text
    assert f'sentiment_shadow_feedback_total{{candidate="{OTHER}",model="active",outcome="correct"}} 1.0' in metrics
    assert f'sentiment_shadow_feedback_total{{candidate="{OTHER}",model="candidate",outcome=' in metrics

    stopped = client.delete("/v1/models/shadow", headers=ADMIN)
    assert stopped.status_code == 200 and stopped.json()["outcome"] == "stopped"
    assert client.get("/v1/models/shadow").json() == {"outcome": "none", "shadow": None}
    assert "sentiment_shadow_info{" not in client.get("/metrics").text
    again = client.delete("/v1/models/shadow", headers=ADMIN)
    assert again.status_code == 404 and again.json()["error_type"] == "shadow_not_running"


def test_a_slow_candidate_never_delays_answers_and_drops_what_it_cannot_take(
    canary_store: Path, make_client: Callable[..., Any]
) -> None:
    client = make_client(models_dir=canary_store, version=str(INTACT), admin_api_key="admin-key", shadow_queue=2)
    assert client.post("/v1/models/shadow", json={"version": OTHER, "share": 1.0}, headers=ADMIN).status_code == 200
    scorer = client.app.state.service.quality.shadow
    real = scorer.classifier.predict

    def slow(batch: Any) -> Any:
        time.sleep(0.3)
        return real(batch)

    scorer.classifier.predict = slow
    started = time.monotonic()
    latencies = []
    for _ in range(30):
        t = time.monotonic()
        assert client.post("/predict", json={"texts": TEXTS[:2]}).status_code == 200
        latencies.append(time.monotonic() - t)
    elapsed = time.monotonic() - started
    assert max(latencies) < 0.3, latencies  # no answer waited for a shadow forward pass
    shadow = wait_scored(client, 60, timeout=5)
    assert shadow["inputs"]["dropped"] > 0 and shadow["inputs"]["offered"] == 60, (shadow, elapsed)
    assert f'sentiment_shadow_inputs_total{{candidate="{OTHER}",outcome="dropped"}}' in client.get("/metrics").text


def test_the_shadow_takes_at_most_its_share_of_the_service_cpu(client: Any) -> None:
    share = client.app.state.settings.shadow_max_busy
    assert client.post("/v1/models/shadow", json={"version": OTHER, "share": 1.0}, headers=ADMIN).status_code == 200
    scorer = client.app.state.service.quality.shadow
    real = scorer.classifier.predict

    def expensive(batch: Any) -> Any:  # 30 ms of CPU per forward pass, whatever the batch
        end = time.thread_time() + 0.03
        while time.thread_time() < end:
            pass
        return real(batch)

    scorer.classifier.predict = expensive
    cpu = time.process_time()  # the app runs in this process (TestClient)
    for _ in range(40):
        assert client.post("/predict", json={"texts": TEXTS}).status_code == 200
    time.sleep(0.5)
    shadow = client.get("/v1/models/shadow").json()["shadow"]
    used = time.process_time() - cpu
    assert shadow["inputs"]["scored"] > 0
    # Its share of the process's CPU, plus what the bucket may hold and the slice that overdraws it.
    assert shadow["busy_seconds"] <= share * used + BURST_CPU_S + 0.05, (shadow, used)
    assert shadow["inputs"]["scored"] < shadow["inputs"]["offered"]  # it fell behind instead


@pytest.mark.parametrize(
    ("version", "status", "error_type"),
    [(INTACT, 409, "shadow_conflict"), (99, 404, "model_not_found"), (ALTERED_WEIGHTS, 422, "canary_failed")],
)
def test_candidates_that_cannot_be_shadowed(client: Any, version: int, status: int, error_type: str) -> None:
    response = client.post("/v1/models/shadow", json={"version": version}, headers=ADMIN)
    assert response.status_code == status, response.text
    assert response.json()["error_type"] == error_type
    assert client.get("/v1/models/shadow").json()["outcome"] == "none"
    assert client.post("/predict", json={"text": "fine"}).json()["model"]["version"] == INTACT


def test_the_swap_memory_check_applies(client: Any) -> None:
    client.app.state.swapper.probe = lambda device: 1 << 20
    response = client.post("/v1/models/shadow", json={"version": OTHER}, headers=ADMIN)
    assert response.status_code == 503 and response.json()["error_type"] == "insufficient_memory"


def test_a_candidate_with_other_labels_is_refused(
    make_client: Callable[..., Any], tmp_path: Path, tokenizer: Any
) -> None:
    root = tmp_path / "models"
    publish_tiny(root, tokenizer, seed=1)
    publish_tiny(root, tokenizer, labels=["negative", "neutral", "positive"], seed=2)
    client = make_client(models_dir=root, version="1", admin_api_key="admin-key")
    response = client.post("/v1/models/shadow", json={"version": 2}, headers=ADMIN)
    assert response.status_code == 422 and "labels" in response.json()["error"]


def test_swapping_to_the_candidate_ends_its_shadow(client: Any) -> None:
    assert client.post("/v1/models/shadow", json={"version": OTHER}, headers=ADMIN).status_code == 200
    assert client.post("/v1/models/reload", json={"version": OTHER}, headers=ADMIN).status_code == 200
    assert client.get("/v1/models/shadow").json()["outcome"] == "none"


def test_shadow_endpoints_need_the_admin_key(canary_store: Path, make_client: Callable[..., Any]) -> None:
    client = make_client(models_dir=canary_store, version=str(INTACT))
    response = client.post("/v1/models/shadow", json={"version": OTHER})
    assert response.status_code == 403 and response.json()["error_type"] == "admin_disabled"
    assert client.delete("/v1/models/shadow").status_code == 403
