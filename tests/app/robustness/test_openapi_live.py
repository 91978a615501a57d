"""Schemathesis against a real `sentiment-serve` process, with schema-violating input too.

tests/app/test_openapi_contract.py drives valid examples against uvicorn in a thread; this runs the
same checks on the installed entry point (real signal handling, logging, httptools/uvloop), in
`all` mode: negative examples must be refused with a documented 4xx, never a 500 or a 2xx.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.helpers.openapi import check_against_openapi
from tests.helpers.serve import ServeProcess

pytestmark = pytest.mark.integration

KEY = "live-contract-key"


def test_real_process_conforms_to_its_openapi_for_valid_and_invalid_input(
    start_server: Callable[..., ServeProcess], shared_models_dir: Path
) -> None:
    server = start_server(
        shared_models_dir, "--max-texts-per-request", "8", "--max-length", "64", env={"SENTIMENT_API_KEY": KEY}
    )
    check_against_openapi(server.url, KEY, mode="all", max_examples=30)
    assert httpx.get(f"{server.url}/health").status_code == 200
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'status="500"' not in metrics
    assert server.terminate(30) == 0
    assert "Traceback" not in server.log()
