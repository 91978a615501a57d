"""Fixtures for the reliability and security tests: a real `sentiment-serve` process on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.serve import ServeProcess, start_serve


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Start `sentiment-serve` (CPU, one torch thread) with extra flags/env; killed at teardown if still up."""
    started: list[ServeProcess] = []

    def _start(models_dir: Path, *args: str, env: dict[str, str] | None = None) -> ServeProcess:
        server = start_serve(models_dir, tmp_path, *args, env=env)
        started.append(server)
        return server

    yield _start
    for server in started:
        server.kill()
