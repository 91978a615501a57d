"""The feedback round trip end to end: a real `sentiment-serve` answers, takes corrections, writes them
durably, drains on SIGTERM; `sentiment-train --data <data> --data 'feedback/*.jsonl'` trains on them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from store.model_store import ModelStore
from store.servable import version_problems
from tests.helpers.data import labelled_rows, tiny_train_args, write_rows
from tests.helpers.serve import start_serve
from training.cli import main as train_main

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_corrections_from_a_live_server_train_the_next_version(
    publish_tiny: Callable[..., Path],
    tiny_base_model: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    models = publish_tiny(quality=True).parents[1]
    feedback_dir = tmp_path / "feedback"
    server = start_serve(models, tmp_path, "--feedback-dir", str(feedback_dir), "--feedback-store-text")
    corrections: dict[str, str] = {}
    try:
        with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as client:
            texts = [f"a correction the service kept, number {i}" for i in range(6)]
            answer = client.post("/predict", json={"texts": texts}).json()
            items: list[dict[str, Any]] = []
            for i, prediction in enumerate(answer["predictions"]):
                label = "negative" if prediction["label"] == "positive" else "positive"  # every answer wrong
                items.append({"request_id": answer["request_id"], "index": i, "label": label})
                corrections[texts[i]] = label
            client_text = "a correction whose text the client sent"
            single = client.post("/predict", json={"text": client_text}).json()
            corrections[client_text] = single["predictions"][0]["label"]  # confirming a right answer
            items.append({"request_id": single["request_id"], "label": corrections[client_text], "text": client_text})
            response = client.post("/feedback", json=items)
            assert response.status_code == 200, response.text
            assert response.json()["accepted"] == 7 and response.json()["stored"] is True
            again = client.post("/feedback", json=items[0])
            assert again.status_code == 409 and again.json()["error_type"] == "duplicate_feedback"
            model = client.get("/v1/models").json()["models"][0]
            assert model["quality"]["canary"]["status"] == "passed"
            metrics = client.get("/metrics").text
            assert 'sentiment_feedback_total{outcome="incorrect",version="1"} 6.0' in metrics
            assert 'sentiment_feedback_total{outcome="correct",version="1"} 1.0' in metrics
        assert server.terminate(30) == 0
    finally:
        server.kill()
    (log,) = feedback_dir.glob("feedback-*.jsonl")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["text"]: r["label"] for r in rows} == corrections
    assert {r["text_source"] for r in rows} == {"service", "client"}

    # ---- the corrections become training data for the next version ----
    data = write_rows(tmp_path / "data.csv", labelled_rows(per_class=40))
    argv = tiny_train_args(data, tiny_base_model, tmp_path, "--max-steps", "4", "--models-dir", str(models))
    argv += ["--data", str(feedback_dir / "*.jsonl")]
    assert train_main(argv) == 0, capsys.readouterr().err
    published = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert published == models / "sentiment" / "2" and version_problems(published, "sentiment", 2) == []
    manifest = ModelStore(models).servable(ModelStore(models).resolve("sentiment", 2)).manifest
    (extra,) = manifest["dataset"]["extra_sources"]
    assert extra["kind"] == "feedback" and extra["rows"] == 7
    assert manifest["hyperparameters"]["extra_data"] == [str(feedback_dir / "*.jsonl")]
    assert sum(manifest["dataset"]["split_sizes"].values()) == 80 + 7
