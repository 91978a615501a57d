"""The alias watcher: `sentiment-models alias` moves the service within a few seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from store.cli import main as models_cli
from store.model_store import ModelStore
from tests.helpers.models import BROKEN_VERSION


def served_version(client: Any) -> int:
    return client.post("/predict", json={"text": "which version?"}).json()["model"]["version"]


def wait_for_version(client: Any, version: int, timeout_s: float = 5.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if client.get("/health").json()["model"]["version"] == version:
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"still on {client.get('/health').json()['model']} after {timeout_s}s, expected {version}")


def swaps(client: Any, outcome: str) -> float:
    prefix = f'sentiment_model_swaps_total{{outcome="{outcome}"}} '
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)]
    return float(lines[0].split()[-1]) if lines else 0.0


def test_the_service_follows_its_alias(swap_store: Path, make_client: Callable[..., Any]) -> None:
    store = ModelStore(swap_store)
    store.set_alias("sentiment", "production", 1)
    client = make_client(models_dir=swap_store, version="production", watch_alias="production", watch_interval_s=0.1)
    assert served_version(client) == 1

    # The operator's command (`sentiment-models alias production 4`; --name defaults to sentiment).
    assert models_cli(["--models-dir", str(swap_store), "alias", "--name", "sentiment", "production", "4"]) == 0
    wait_for_version(client, 4)
    assert served_version(client) == 4

    # A broken target is refused; the service stays on 4 and does not retry it every interval.
    store.set_alias("sentiment", "production", BROKEN_VERSION)
    deadline = time.monotonic() + 5
    while swaps(client, "invalid") < 1:
        assert time.monotonic() < deadline, "the watcher never tried the broken version"
        time.sleep(0.02)
    time.sleep(0.5)  # five more intervals
    assert swaps(client, "invalid") == 1
    assert client.get("/health").json()["status"] == "ready"
    assert served_version(client) == 4

    store.set_alias("sentiment", "production", 2)
    wait_for_version(client, 2)
    assert swaps(client, "success") == 2


def test_following_latest_picks_up_a_new_publish(
    swap_store: Path, make_client: Callable[..., Any], publish_tiny: Callable[..., Path]
) -> None:
    client = make_client(models_dir=swap_store, version="latest", watch_alias="latest", watch_interval_s=0.1)
    assert served_version(client) == 4
    published = publish_tiny(seed=5, models_dir=swap_store)
    assert published.name == "5"
    wait_for_version(client, 5)
