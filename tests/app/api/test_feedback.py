"""POST /feedback: all-or-nothing, typed 4xx, durable JSONL, live accuracy and confusion per version."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.quality import feedback_log
from store.feedback_format import FORMAT


@pytest.fixture
def client(make_client: Callable[..., Any], tmp_path: Path) -> Any:
    return make_client(feedback_dir=tmp_path / "feedback")


def predict(client: Any, *texts: str, **headers: str) -> dict[str, Any]:
    response = client.post("/predict", json={"texts": list(texts)}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def stored(tmp_path: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for p in sorted((tmp_path / "feedback").glob("feedback-*.jsonl"))
        for line in p.read_text().splitlines()
    ]


def other(label: str) -> str:
    return "negative" if label == "positive" else "positive"


def test_feedback_is_stored_and_counted(client: Any, tmp_path: Path) -> None:
    answer = predict(client, "A gripping film.", "Dull.")
    rid, predicted = answer["request_id"], [p["label"] for p in answer["predictions"]]
    items = [
        {"request_id": rid, "index": 0, "label": predicted[0]},
        {"request_id": rid, "index": 1, "label": other(predicted[1]), "text": "Dull."},
    ]
    response = client.post("/feedback", json=items)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 2 and body["stored"] is True
    assert [f["correct"] for f in body["feedback"]] == [True, False]
    assert body["feedback"][1] == {
        "request_id": rid, "index": 1, "model": {"name": "sentiment", "version": 1},
        "predicted": predicted[1], "label": other(predicted[1]), "correct": False,
    }  # fmt: skip
    first, second = stored(tmp_path)
    assert first["format"] == FORMAT and "text" not in first  # not sent and not kept: privacy by default
    assert second["text"] == "Dull." and second["text_source"] == "client" and second["label"] == other(predicted[1])
    assert second["model"] == {"name": "sentiment", "version": 1} and second["predicted"] == predicted[1]
    assert set(second["probabilities"]) == {"negative", "positive"}
    metrics = client.get("/metrics").text
    assert 'sentiment_feedback_total{outcome="correct",version="1"} 1.0' in metrics
    assert 'sentiment_feedback_total{outcome="incorrect",version="1"} 1.0' in metrics
    confusion = f'actual="{other(predicted[1])}",predicted="{predicted[1]}",version="1"'
    assert f"sentiment_feedback_confusion_total{{{confusion}}} 1.0" in metrics
    assert "sentiment_feedback_stored_total 2.0" in metrics


@pytest.mark.parametrize(
    ("item", "status", "error_type"),
    [
        ({"request_id": "never-answered", "label": "positive"}, 404, "prediction_not_found"),
        ({"index": 7, "label": "positive"}, 404, "prediction_not_found"),
        ({"label": "positive"}, 422, "invalid_request"),  # two texts answered: which one?
        ({"index": 0, "label": "neutral"}, 422, "unknown_label"),
        ({"index": 0, "label": "positive", "bogus": 1}, 422, "invalid_request"),
        ({"index": -1, "label": "positive"}, 422, "invalid_request"),
    ],
)
def test_bad_feedback_is_a_typed_error_and_records_nothing(
    client: Any, tmp_path: Path, item: dict[str, Any], status: int, error_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    rid = predict(client, "one", "two")["request_id"]
    good = {"request_id": rid, "index": 1, "label": "positive"}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="app.errors"):
        response = client.post("/feedback", json=[good, {"request_id": rid, **item}])
    assert response.status_code == status, response.text
    assert response.json()["error_type"] == error_type
    assert len([r for r in caplog.records if r.name == "app.errors"]) == 1  # one log line per refused call
    assert stored(tmp_path) == []
    assert client.post("/feedback", json=good).status_code == 200  # the good item was not taken either


def test_duplicates_are_refused_whether_earlier_or_in_the_same_call(client: Any, tmp_path: Path) -> None:
    rid = predict(client, "fine")["request_id"]
    item = {"request_id": rid, "label": "positive"}
    twice = client.post("/feedback", json=[item, item])
    assert twice.status_code == 409 and twice.json()["error_type"] == "duplicate_feedback"
    assert client.post("/feedback", json=item).status_code == 200
    again = client.post("/feedback", json={**item, "label": "negative"})
    assert again.status_code == 409 and "already given" in again.json()["error"]
    assert len(stored(tmp_path)) == 1
    assert 'sentiment_feedback_rejected_total{reason="duplicate_feedback"} 2.0' in client.get("/metrics").text


def test_expired_answers_take_no_feedback(make_client: Callable[..., Any]) -> None:
    client = make_client(feedback_max_age_s=0.2)
    rid = predict(client, "fine")["request_id"]
    time.sleep(0.3)
    response = client.post("/feedback", json={"request_id": rid, "label": "positive"})
    assert response.status_code == 404 and "older than the feedback window" in response.json()["error"]


def test_kept_texts_go_with_the_feedback_and_must_match(make_client: Callable[..., Any], tmp_path: Path) -> None:
    client = make_client(feedback_dir=tmp_path / "feedback", feedback_store_text=True)
    rid = predict(client, "Kept text.")["request_id"]
    mismatch = client.post("/feedback", json={"request_id": rid, "label": "positive", "text": "Another text."})
    assert mismatch.status_code == 422 and mismatch.json()["error_type"] == "text_mismatch"
    assert client.post("/feedback", json={"request_id": rid, "label": "positive"}).status_code == 200
    (row,) = stored(tmp_path)
    assert row["text"] == "Kept text." and row["text_source"] == "service"


def test_without_a_directory_feedback_only_feeds_the_metrics(make_client: Callable[..., Any]) -> None:
    client = make_client()
    rid = predict(client, "fine")["request_id"]
    body = client.post("/feedback", json={"request_id": rid, "label": "positive"}).json()
    assert body["stored"] is False and body["accepted"] == 1
    assert "sentiment_feedback_total{" in client.get("/metrics").text


def test_a_full_directory_or_a_disk_error_records_nothing(
    make_client: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(feedback_dir=tmp_path / "feedback", feedback_max_total_bytes=1024)
    (tmp_path / "feedback").mkdir()
    (tmp_path / "feedback" / "feedback-old.jsonl").write_bytes(b"x" * 1000)
    rid = predict(client, "fine")["request_id"]
    full = client.post("/feedback", json={"request_id": rid, "label": "positive"})
    assert full.status_code == 507 and full.json()["error_type"] == "feedback_store_full"

    def broken(self: Any, data: bytes) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(feedback_log.FeedbackLog, "append", broken)
    failed = client.post("/feedback", json={"request_id": rid, "label": "positive"})
    assert failed.status_code == 503 and failed.json()["error_type"] == "feedback_not_stored"
    metrics = client.get("/metrics").text
    assert 'sentiment_feedback_write_errors_total{reason="full"} 1.0' in metrics
    assert 'sentiment_feedback_write_errors_total{reason="io"} 1.0' in metrics
    assert 'sentiment_feedback_total{outcome="correct",version="1"} 0.0' in metrics  # nothing counted
    assert 'sentiment_feedback_total{outcome="incorrect",version="1"} 0.0' in metrics
    monkeypatch.undo()
    client.app.state.service.quality.feedback.log.max_total_bytes = 1 << 20
    assert client.post("/feedback", json={"request_id": rid, "label": "positive"}).status_code == 200  # retry works


@pytest.mark.parametrize(
    ("keys", "header", "status"),
    [
        ({"api_key": "api"}, None, 401),
        ({"api_key": "api"}, "api", 200),
        ({"api_key": "api", "feedback_api_key": "fb"}, "api", 401),
        ({"api_key": "api", "feedback_api_key": "fb"}, "fb", 200),
        ({"feedback_api_key": "fb"}, None, 401),
    ],
)
def test_feedback_auth_is_like_predict_with_an_optional_key_of_its_own(
    make_client: Callable[..., Any], keys: dict[str, str], header: str | None, status: int
) -> None:
    client = make_client(**keys)
    auth = {"Authorization": "Bearer api"} if "api_key" in keys else {}
    rid = predict(client, "fine", **auth)["request_id"]
    headers = {"Authorization": f"Bearer {header}"} if header else {}
    response = client.post("/feedback", json={"request_id": rid, "label": "positive"}, headers=headers)
    assert response.status_code == status, response.text


def test_feedback_can_be_turned_off(make_client: Callable[..., Any]) -> None:
    client = make_client(feedback_records=0)
    rid = predict(client, "fine")["request_id"]
    response = client.post("/feedback", json={"request_id": rid, "label": "positive"})
    assert response.status_code == 403 and response.json()["error_type"] == "feedback_disabled"


def test_too_many_items_are_refused(make_client: Callable[..., Any]) -> None:
    client = make_client(max_texts_per_request=2)
    response = client.post("/feedback", json=[{"request_id": "a", "label": "positive"}] * 3)
    assert response.status_code == 413 and response.json()["error_type"] == "too_many_items"
    empty = client.post("/feedback", json=[])
    assert empty.status_code == 422 and empty.json()["error_type"] == "invalid_request"
