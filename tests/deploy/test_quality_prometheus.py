"""Model quality through a real Prometheus, without Docker: a real `sentiment-serve` (tiny model with its
canary and reference), deploy/'s scrape config and alert rules, live traffic, feedback and a shadow
candidate; then every dashboard query, the quality panels included, must return data, and every rule
must evaluate cleanly with none firing. (tests/deploy/test_compose_up.py does the same through compose.)
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers.deploy import (
    API_JOB,
    DASHBOARD,
    DEPLOY,
    PrometheusClient,
    dashboard_queries,
    finite_values,
    retarget_scrape_config,
    wait_for,
)
from tests.helpers.models import build_spread_bert, publish_tiny
from tests.helpers.net import free_port
from tests.helpers.serve import ServeProcess, start_serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ADMIN = {"Authorization": "Bearer quality-admin"}
WORDS = ["the", "film", "was", "Gripping", "beautifully", "shot", "tedious", "mess", "Wooden", "acting", "great"]


@pytest.fixture
def server(tmp_path: Path, tokenizer: Any) -> Iterator[ServeProcess]:
    models = tmp_path / "models"
    for seed in (1, 2):
        publish_tiny(models, tokenizer, model=build_spread_bert(["negative", "positive"], seed=seed), quality=True)
    args = ["--model-version", "1", "--max-length", "64", "--feedback-dir", str(tmp_path / "feedback")]
    args += ["--drift-min-inputs", "20", "--drift-window", "500"]
    process = start_serve(models, tmp_path, *args, env={"SENTIMENT_ADMIN_API_KEY": "quality-admin"})
    try:
        yield process
    finally:
        process.kill()


def traffic(client: httpx.Client, requests: int = 120) -> list[dict[str, Any]]:
    rng = random.Random(0)
    answers = []
    for _ in range(requests):
        texts = [" ".join(rng.choices(WORDS, k=rng.randint(1, 30))) for _ in range(rng.randint(1, 4))]
        response = client.post("/predict", json={"texts": texts})
        assert response.status_code == 200, response.text
        answers.append(response.json())
    assert client.post("/predict", json={"texts": ["ok"] * 10_000}).status_code == 413  # a rejection to chart
    return answers


def give_feedback(client: httpx.Client, answers: list[dict[str, Any]]) -> None:
    for k, answer in enumerate(answers[:40]):
        label = answer["predictions"][0]["label"]
        if k % 3 == 0:
            label = "negative" if label == "positive" else "positive"
        response = client.post("/feedback", json={"request_id": answer["request_id"], "index": 0, "label": label})
        assert response.status_code == 200, response.text


def test_quality_panels_and_rules_work_on_a_real_scrape(
    server: ServeProcess, start_prometheus: Callable[..., PrometheusClient], tmp_path: Path
) -> None:
    port = free_port()
    shipped = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    config = retarget_scrape_config(
        shipped, f"127.0.0.1:{server.port}", f"127.0.0.1:{port}", DEPLOY / "prometheus/alerts.yml"
    )
    prometheus = start_prometheus(config, port)
    with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as client:
        started = client.post("/v1/models/shadow", json={"version": 2, "share": 1.0}, headers=ADMIN)
        assert started.status_code == 200, started.text
        wait_for(lambda: prometheus.scalar(f'up{{job="{API_JOB}"}}') == 1, 30, what="up == 1 for the api")
        answers = traffic(client)
        give_feedback(client, answers)
        wait_for(
            lambda: (prometheus.scalar("sum(sentiment_feedback_total)") or 0) >= 40,
            30,
            what="the feedback counter scraped",
        )
        quality = client.get("/v1/models").json()["models"][0]["quality"]
        assert quality["canary"]["status"] == "passed" and quality["predictions"]["drift_psi"] is not None
        traffic(client, 40)  # a second scrape with movement, for the rates

    queries = dashboard_queries(json.loads(DASHBOARD.read_text()))

    def missing() -> list[str]:
        return [f"{q.panel}/{q.ref_id}" for q in queries if not finite_values(prometheus.query(q.resolved()))]

    wait_for(lambda: not missing() or None, 90, interval=2, what="data for every dashboard panel")
    assert prometheus.scalar('max(sentiment_canary_status{status="passed",version="1"})') == 1

    def evaluated_rules() -> list[dict[str, Any]] | None:
        rules = prometheus.rules()
        never = [r for r in rules if r["lastEvaluation"].startswith("0001")]
        return rules if rules and not never else None

    rules = wait_for(evaluated_rules, 30, what="every rule evaluated once")
    expected = sum(len(g["rules"]) for g in yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())["groups"])
    assert len(rules) == expected and all(r["health"] == "ok" for r in rules), rules
    assert not prometheus.query('ALERTS{alertstate="firing"}'), prometheus.query("ALERTS")
    assert server.terminate(30) == 0
    assert list((tmp_path / "feedback").glob("feedback-*.jsonl"))
