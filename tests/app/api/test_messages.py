"""Error messages for people: they name the field and say what is expected, never pydantic's internals."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.api.log_limit import RateLimitedLog
from app.api.validation import summarise_validation
from tests.helpers.app import in_process_client

JSON = {"content-type": "application/json"}
# What pydantic's own messages for a union field look like: none of it may reach a client.
INTERNALS = ("text.str", "text.none", "list[str]", "Input should", "Value error", "constrained-", "function-")


@pytest.fixture(scope="module")
def client(shared_models_dir: Path) -> Iterator[TestClient]:
    with in_process_client(shared_models_dir, admin_api_key="admin") as test_client:
        yield test_client


def refused(client: TestClient, body: bytes | str, path: str = "/predict", **headers: str) -> tuple[str, str]:
    response = client.post(path, content=body, headers={**JSON, **headers})
    assert response.status_code == 422, response.text
    return response.json()["error_type"], response.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"text": 5}', "text must be a string, not a number"),
        ('{"text": null}', "text must be a string, not null"),
        ('{"text": ["a"]}', "text must be a string, not an array"),
        ('{"texts": ["a", "b", 5]}', "texts[2] must be a string, not a number"),
        ('{"texts": "one"}', "texts must be a list of strings, not a string"),
        ('{"inputs": {"a": 1}}', "inputs must be a string or a list of strings, not an object"),
        ('{"inputs": ["a", true]}', "inputs[1] must be a string, not a boolean"),
        ('{"texts": ["ok", "  "]}', "texts[1] is empty (or only whitespace)"),
        ('{"texts": []}', "texts is an empty list; send at least one text"),
        ('{"text": "a", "timeout_s": -1}', "timeout_s must be greater than 0"),
        ('{"text": "a", "timeout_s": "soon"}', "timeout_s must be a number"),
        ('{"text": "a", "raw_scores": "yes please"}', "raw_scores must be true or false"),
        ('{"text": "a", "truncation": "cut"}', "truncation must be 'truncate', 'reject' or 'chunk'"),
        ('{"text": "a", "colour": "red"}', "unknown field 'colour'; the accepted fields are text, texts, inputs"),
        ("{}", "give exactly one of 'text', 'texts' or 'inputs' (got none)"),
        ("[1, 2]", "the request body must be a JSON object, not an array"),
        ('{"texts": ["fine", "bad \\ud800 surrogate"]}', "texts[1] is not valid Unicode"),
    ],
)
def test_invalid_bodies_name_the_field_and_what_is_expected(client: TestClient, body: str, message: str) -> None:
    error_type, error = refused(client, body)
    assert error_type in {"invalid_request", "empty_input"}
    assert error.startswith(message), error
    assert not any(internal in error for internal in INTERNALS), error


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"version": true}', "version must be a version number from 1 to 1000000000 or an alias"),
        ('{"version": 0}', "version must be a version number from 1 to 1000000000 or an alias such as 'production', "
         "not a number (0)"),
        ('{"version": "../../etc"}', "version '../../etc' is not a version number or an alias"),
        ("{}", "version is required"),
        ('{"version": 2, "force": true}', "unknown field 'force'; the accepted fields are version"),
    ],
)  # fmt: skip
def test_reload_bodies_say_what_a_version_is(client: TestClient, body: str, message: str) -> None:
    error_type, error = refused(client, body, "/v1/models/reload", authorization="Bearer admin")
    assert error_type == "invalid_request" and error.startswith(message), error


def test_bodies_that_cannot_be_parsed_say_why(client: TestClient) -> None:
    assert refused(client, '{"text": ') == (
        "invalid_json",
        "request body is not valid JSON (Expecting value at character 9)",
    )
    latin1 = client.post("/predict", content='{"text": "café"}'.encode("latin-1"), headers=JSON)
    assert latin1.json() == {
        "error": "request body is not JSON text: its bytes are not valid UTF-8 (invalid continuation byte at byte 13)",
        "error_type": "invalid_json",
    }
    deep = refused(client, "[" * 100_000 + "]" * 100_000)
    expected = "request body nests JSON too deeply to parse (a request needs 2 levels: an object holding a list)"
    assert deep == ("invalid_json", expected)
    assert "UTF-8 JSON" not in deep[1]  # the old message blamed the encoding for any parse failure


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["text", "texts", "inputs"]), inner),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(["text", "texts", "inputs", "truncation", "timeout_s"]), json_values))
def test_no_body_gets_pydantic_internals(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/predict", content=json.dumps(body), headers=JSON)
    if response.status_code == 422:
        error = response.json()["error"]
        assert not any(internal in error for internal in INTERNALS), (body, error)


def test_summaries_of_unexpected_errors_stay_readable() -> None:
    union = [
        {"type": "int_parsing", "loc": ("body", "n", "int"), "msg": "Input should be a valid integer"},
        {"type": "string_type", "loc": ("body", "n", "str"), "msg": "Input should be a valid string"},
        {"type": "none_required", "loc": ("body", "n", "none"), "msg": "Input should be None"},
        {"type": "missing", "loc": ("body", "other"), "msg": "Field required"},
    ]
    message, error_type = summarise_validation(union)
    assert error_type == "invalid_request"
    assert message == "n must be a whole number or must be a valid string; other is required"
    many = [{"type": "missing", "loc": ("body", f"f{i}"), "msg": "Field required"} for i in range(9)]
    assert summarise_validation(many)[0].endswith("f4 is required (+4 more)")


def test_429s_log_one_line_per_second_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    limited = RateLimitedLog(logging.getLogger("test.overload"), "refusals", clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.overload"):
        for step in range(30):  # 30 refusals over 1.45 s
            now[0] = 100.0 + step * 0.05
            limited.warning("request %s -> 429", step)
        limited.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "request 0 -> 429",
        "request 20 -> 429 (+19 more refusals in the last 1.0s, not logged)",
        "9 more refusals were not logged",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records)
