"""The canary gate at start-up and before a swap: checksums pass, the canary must not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from store.servable import version_problems
from tests.app.quality.conftest import ALTERED_WEIGHTS, INTACT, NO_CANARY, OTHER, OTHER_TOKENIZER
from tests.helpers.serve import run_serve

ADMIN = {"Authorization": "Bearer admin-key"}


def metric_lines(client: Any, prefix: str) -> list[str]:
    return [line for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)]


def canary_of(client: Any) -> dict[str, Any]:
    return client.get("/v1/models").json()["models"][0]["quality"]["canary"]


def test_the_broken_versions_pass_every_checksum(canary_store: Path) -> None:
    for version in (ALTERED_WEIGHTS, OTHER_TOKENIZER):
        assert version_problems(canary_store / "sentiment" / str(version), "sentiment", version) == []


@pytest.mark.parametrize(
    ("version", "why"),
    [(ALTERED_WEIGHTS, "exceeds the tolerance"), (OTHER_TOKENIZER, "tokenize to a different length")],
)
def test_start_refuses_a_version_that_fails_its_canary_with_exit_2(canary_store: Path, version: int, why: str) -> None:
    result = run_serve("--models-dir", str(canary_store), "--model-version", str(version), "--max-length", "64")
    assert result.returncode == 2, result.stderr[-3000:]
    assert f"refusing to serve version {version}: its canary failed" in result.stderr
    assert why in result.stderr
    assert "Traceback" not in result.stderr


def test_an_intact_version_passes_and_says_so(canary_store: Path, make_client: Callable[..., Any]) -> None:
    client = make_client(models_dir=canary_store, version=str(INTACT))
    canary = canary_of(client)
    assert canary["status"] == "passed" and canary["version"] == INTACT
    assert canary["examples"] > 0 and canary["max_prob_diff"] <= canary["tolerance"]["max_prob_diff"]
    assert canary["agreement"] == 1.0 and canary["token_mismatches"] == 0
    assert metric_lines(client, "sentiment_canary_status") == [
        f'sentiment_canary_status{{status="passed",version="{INTACT}"}} 1.0'
    ]
    assert 'sentiment_canary_runs_total{outcome="passed",stage="start"} 1.0' in metric_lines(
        client, "sentiment_canary_runs"
    )


def test_a_version_published_before_canaries_serves_with_a_warning(
    canary_store: Path, make_client: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(models_dir=canary_store, version=str(NO_CANARY))
    assert client.post("/predict", json={"text": "fine"}).status_code == 200
    assert canary_of(client)["status"] == "missing"
    assert f'sentiment_canary_status{{status="missing",version="{NO_CANARY}"}} 1.0' in metric_lines(
        client, "sentiment_canary_status"
    )
    assert any("published without a canary set" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


@pytest.mark.parametrize(
    ("version", "why"),
    [(ALTERED_WEIGHTS, "exceeds the tolerance"), (OTHER_TOKENIZER, "tokenize to a different length")],
)
def test_a_swap_to_a_version_that_fails_its_canary_keeps_the_old_one(
    canary_store: Path, make_client: Callable[..., Any], version: int, why: str
) -> None:
    client = make_client(models_dir=canary_store, version=str(INTACT), admin_api_key="admin-key")
    response = client.post("/v1/models/reload", json={"version": version}, headers=ADMIN)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error_type"] == "canary_failed"
    assert f"version {version} failed its canary" in body["error"] and why in body["error"]
    assert f"still serving version {INTACT}" in body["error"]
    assert client.get("/health").json()["model"]["version"] == INTACT
    assert client.post("/predict", json={"text": "fine"}).json()["model"]["version"] == INTACT
    assert canary_of(client)["status"] == "passed"
    assert 'sentiment_model_swaps_total{outcome="canary_failed"} 1.0' in client.get("/metrics").text
    assert 'sentiment_canary_runs_total{outcome="failed",stage="swap"} 1.0' in metric_lines(
        client, "sentiment_canary_runs"
    )


def test_a_swap_to_an_intact_version_reports_its_canary(canary_store: Path, make_client: Callable[..., Any]) -> None:
    client = make_client(models_dir=canary_store, version=str(INTACT), admin_api_key="admin-key")
    response = client.post("/v1/models/reload", json={"version": OTHER}, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["canary"]["status"] == "passed"
    assert canary_of(client)["version"] == OTHER
    assert metric_lines(client, "sentiment_canary_status") == [
        f'sentiment_canary_status{{status="passed",version="{OTHER}"}} 1.0'
    ]


def test_warn_mode_serves_a_failing_version_and_shows_it(canary_store: Path, make_client: Callable[..., Any]) -> None:
    client = make_client(models_dir=canary_store, version=str(ALTERED_WEIGHTS), canary_gate="warn")
    assert client.post("/predict", json={"text": "fine"}).json()["model"]["version"] == ALTERED_WEIGHTS
    canary = canary_of(client)
    assert canary["status"] == "failed" and "exceeds the tolerance" in canary["reason"]
    assert canary["worst"]["served"] != canary["worst"]["recorded"]


def test_examples_over_the_token_limit_are_skipped_not_truncated(
    canary_store: Path, make_client: Callable[..., Any]
) -> None:
    client = make_client(models_dir=canary_store, version=str(INTACT), max_length=8, max_batch_tokens=64)
    canary = canary_of(client)
    assert canary["status"] == "passed" and canary["skipped"] > 0 and canary["examples"] > 0
