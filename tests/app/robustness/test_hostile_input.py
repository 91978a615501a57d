"""Hostile and odd input on POST /predict: a correct answer or a typed 4xx, never a 500, healthy after.

In-process (TestClient around the real app and a tiny real model) so hypothesis can afford many
examples; the HTTP edge of a real process is covered by tests/app/test_openapi_contract.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.api.schemas import is_blank
from app.config import Settings
from app.errors import ERROR_TYPES
from tests.helpers.app import in_process_client

MAX_TEXTS = 16
LABELS = ["negative", "positive"]
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)

# Characters that break naive text handling, mixed into otherwise arbitrary Unicode.
NASTY = [
    "\x00", "\x07", "\x1b[31m", "\r\n", "\t", "\u200b", "\u200c", "\u200d", "\ufeff", "\u2028", "\u202e",
    "\u0301", "\u0308\u0308\u0308", "e\u0301", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "\U0001f600", "\uffff", "\U0010ffff",
    "\u3000", "\u00a0", "ﷺ", "𒐫", "ǅ", "İ", "ß", "\\", '"', "</script>", "%s%n", "{{}}", "null",
]  # fmt: skip
any_char = st.characters(exclude_categories=["Cs"])  # every code point a JSON string can carry as UTF-8
hostile_text = st.lists(st.one_of(st.sampled_from(NASTY), st.text(any_char, max_size=8)), max_size=12).map("".join)


@pytest.fixture(scope="module")
def client(shared_models_dir: Path) -> Iterator[TestClient]:
    with in_process_client(shared_models_dir, max_texts_per_request=MAX_TEXTS) as test_client:
        yield test_client
        assert test_client.get("/health").status_code == 200  # healthy after everything the module sent
        assert 'status="500"' not in test_client.get("/metrics").text


def assert_typed_error(response: Any, *statuses: int) -> str:
    """A documented error: the JSON error shape with a stable type that matches the status."""
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"error", "error_type"} and body["error"], body
    assert ERROR_TYPES[body["error_type"]] == response.status_code, body
    return body["error_type"]


def assert_answers(response: Any, count: int) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text[:300]
    predictions = response.json()["predictions"]
    assert len(predictions) == count
    for pred in predictions:
        probs = pred["probabilities"]
        assert list(probs) == LABELS and pred["label"] in LABELS
        assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-6)
        assert pred["score"] == max(probs.values()) and isinstance(pred["truncated"], bool)
    return predictions


@EXAMPLES
@given(text=hostile_text)
def test_any_unicode_text_gets_an_answer_or_empty_input(client: TestClient, text: str) -> None:
    response = client.post("/predict", json={"text": text})
    if not is_blank(text):
        assert_answers(response, 1)
    else:  # empty or whitespace-only by the service's one rule (JSON Schema's \s, BOM included)
        assert assert_typed_error(response, 422) == "empty_input"


@EXAMPLES
@given(texts=st.lists(hostile_text.filter(lambda text: not is_blank(text)), min_size=1, max_size=MAX_TEXTS))
def test_lists_of_texts_are_answered_in_order(client: TestClient, texts: list[str]) -> None:
    forward = assert_answers(client.post("/predict", json={"texts": texts}), len(texts))
    backward = assert_answers(client.post("/predict", json={"inputs": texts[::-1]}), len(texts))
    for a, b in zip(forward, backward[::-1], strict=True):
        assert a["label"] == b["label"] and a["truncated"] == b["truncated"]
        for label in LABELS:
            assert math.isclose(a["probabilities"][label], b["probabilities"][label], abs_tol=1e-4)


@EXAMPLES
@given(before=st.text(any_char, max_size=20), after=st.text(any_char, max_size=20), high=st.booleans())
def test_lone_surrogate_escapes_are_a_typed_422(client: TestClient, before: str, after: str, high: bool) -> None:
    lone = "\\ud83d" if high else "\\ude00"
    raw = json.dumps(before)[:-1] + lone + json.dumps(after)[1:]  # a JSON string with an unpaired escape
    response = client.post("/predict", content=f'{{"text": {raw}}}', headers={"content-type": "application/json"})
    assert assert_typed_error(response, 422) == "invalid_request"
    paired = json.dumps(before)[:-1] + "\\ud83d\\ude00" + json.dumps(after)[1:]  # the same, but a valid 😀
    assert_answers(
        client.post("/predict", content=f'{{"text": {paired}}}', headers={"content-type": "application/json"}), 1
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner) | st.dictionaries(st.sampled_from(["text", "texts", "inputs", "x"]), inner),
    max_leaves=30,
)


@EXAMPLES
@given(body=json_values)
def test_arbitrary_json_bodies_never_500(client: TestClient, body: Any) -> None:
    response = client.post("/predict", content=json.dumps(body), headers={"content-type": "application/json"})
    if response.status_code != 200:
        assert_typed_error(response, 413, 422)


@pytest.mark.parametrize("depth", [1_000, 100_000, 500_000])
def test_deeply_nested_json_is_a_typed_422(client: TestClient, depth: int) -> None:
    for body in ("[" * depth + "]" * depth, '{"text": ' + "[" * depth + "]" * depth + "}", '{"a":' * depth):
        response = client.post("/predict", content=body, headers={"content-type": "application/json"})
        expected = "body_too_large" if len(body) > Settings().max_body_bytes else "invalid_json"
        assert assert_typed_error(response, 413, 422) == expected


def test_huge_bodies(client: TestClient) -> None:
    limit = Settings().max_body_bytes
    # A ~1 MB text fits the 1 MiB body limit: answered, cut to the token limit and flagged.
    (pred,) = assert_answers(client.post("/predict", json={"text": "great " * 170_000}), 1)
    assert pred["truncated"] is True
    accents = "é " * 300_000  # 900 kB of UTF-8
    assert assert_answers(client.post("/predict", json={"text": accents}), 1)[0]["truncated"] is True
    word = "é" * 400_000  # one 400,000-character word: WordPiece makes it a single [UNK], nothing to cut
    assert assert_answers(client.post("/predict", json={"text": word}), 1)[0]["truncated"] is False
    too_big = client.post("/predict", json={"text": "x" * limit})
    assert assert_typed_error(too_big, 413) == "body_too_large"
    many_keys = json.dumps({"text": "a", **{f"k{i}": i for i in range(60_000)}})
    assert len(many_keys) < limit
    response = client.post("/predict", content=many_keys, headers={"content-type": "application/json"})
    assert assert_typed_error(response, 422) == "invalid_request"
    assert len(response.content) < 4096  # the error summarises; it does not echo 60,000 complaints
    numbers = json.dumps({"texts": list(range(100_000))})
    response = client.post("/predict", content=numbers, headers={"content-type": "application/json"})
    assert assert_typed_error(response, 413, 422) in {"invalid_request", "too_many_texts"}


def test_the_maximum_number_of_texts_is_answered_and_one_more_refused(client: TestClient) -> None:
    texts = [f"review number {i} {'!' * (i % 3)}" for i in range(MAX_TEXTS)]
    assert_answers(client.post("/predict", json={"texts": texts}), MAX_TEXTS)
    assert assert_typed_error(client.post("/predict", json={"texts": [*texts, "x"]}), 413) == "too_many_texts"
    long_texts = ["word " * 2_000] * MAX_TEXTS  # every one over the token limit
    assert all(p["truncated"] for p in assert_answers(client.post("/predict", json={"texts": long_texts}), MAX_TEXTS))


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml",
     "application/octet-stream", "image/png", "", "garbage"],
)  # fmt: skip
def test_non_json_content_types_are_invalid_request(client: TestClient, content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    for body in (b'{"text": "a fine film"}', bytes(range(256)) * 64):
        response = client.post("/predict", content=body, headers=headers)
        assert assert_typed_error(response, 422) == "invalid_request"


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-16", "application/vnd.api+json"])
def test_json_content_types_are_parsed_as_utf8_json(client: TestClient, content_type: str) -> None:
    headers = {"content-type": content_type}
    assert_answers(client.post("/predict", content=b'{"text": "a fine film"}', headers=headers), 1)
    binary = client.post("/predict", content=bytes(range(256)) * 64, headers=headers)
    assert assert_typed_error(binary, 422) == "invalid_json"
