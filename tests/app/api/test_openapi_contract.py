"""Schemathesis against a live server: every answer matches the documented statuses and schemas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.lifecycle.service import load_configured
from app.main import create_app
from tests.helpers.app import TEST_SETTINGS, live_server
from tests.helpers.openapi import check_against_openapi

API_KEY = "contract-key"


@pytest.fixture(scope="module")
def live_url(shared_models_dir: Path) -> Iterator[str]:
    config = Settings(models_dir=shared_models_dir, **{**TEST_SETTINGS, "api_key": API_KEY, "max_texts_per_request": 8})
    with live_server(create_app(config, load_configured(config))) as url:
        for _ in range(500):
            if httpx.get(f"{url}/health").status_code == 200:
                break
        yield url


def test_api_conforms_to_its_openapi(live_url: str) -> None:
    check_against_openapi(live_url, API_KEY)
