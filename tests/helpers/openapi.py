"""Schemathesis over a live server's own OpenAPI schema: every answer must match what it documents."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig


def check_against_openapi(url: str, api_key: str, mode: str = "positive", max_examples: int = 40) -> None:
    """Every operation of the live schema at `url`, examples generated in `mode` (positive, negative, all)."""
    # schemathesis' pytest loader (from_fixture) does not work with this pytest; drive its strategies directly.
    config = SchemathesisConfig.from_dict(
        {
            "generation": {"mode": mode},
            "checks": {
                # 503 (not ready / draining / batch failed) and 504 (deadline) are documented answers;
                # a 500 is still a failure.
                "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503", "504"]},
                # A schema-valid text can still be over the token limit with "truncate": false (413).
                "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "413", "429", "503", "504"]},
            },
            # A well-formed version reference may name no published version (404, `model_not_found`).
            "operations": [
                {
                    "include-path": "/v1/models/reload",
                    "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "404"]}},
                },
                # Generated request ids name no recent answer (404); a store of one version has no candidate
                # to shadow (404 model_not_found, 409 shadow_conflict for the active one, 404 nothing to stop).
                {
                    "include-path": "/feedback",
                    "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "404", "413"]}},
                },
                {
                    "include-path": "/v1/models/shadow",
                    "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "404", "409"]}},
                },
            ],
        }
    )
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {"POST /predict", "GET /v1/models", "GET /health"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {api_key}"})

        check()
