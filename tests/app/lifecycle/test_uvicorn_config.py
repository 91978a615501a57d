"""The uvicorn knobs are Settings fields, with the defaults docs/operations.md ("Bursts") gives reasons for."""

from __future__ import annotations

import logging
import resource
from pathlib import Path

import pytest

from app.config import Settings
from app.lifecycle.protocol import GuardedHttpToolsProtocol
from app.lifecycle.uvicorn_config import FD_RESERVE, check_somaxconn, uvicorn_config
from tests.helpers.fakes import EchoApp


def test_settings_reach_uvicorn() -> None:
    config = uvicorn_config(
        EchoApp(), Settings(keep_alive_timeout_s=75, listen_backlog=512, max_connections=300, port=0)
    )
    assert config.timeout_keep_alive == 75
    assert config.backlog == 512
    assert config.limit_concurrency == 301  # uvicorn counts the connection asking: 300 are served
    assert issubclass(config.http, GuardedHttpToolsProtocol)
    assert config.timeout_graceful_shutdown == 5  # uvicorn's graceful shutdown, as before


def test_defaults_follow_the_queue_and_the_open_files_limit() -> None:
    assert uvicorn_config(EchoApp(), Settings()).backlog == 2048
    assert uvicorn_config(EchoApp(), Settings(queue_capacity=10_000)).backlog == 10_000
    limit = uvicorn_config(EchoApp(), Settings()).limit_concurrency
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)  # raised to the hard limit by the call above
    assert limit == soft - FD_RESERVE + 1


def test_a_smaller_somaxconn_is_named_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sysctl = tmp_path / "somaxconn"
    sysctl.write_text("128\n")
    with caplog.at_level(logging.WARNING, logger="app.lifecycle"):
        assert check_somaxconn(2048, sysctl) == 128
    assert "net.core.somaxconn is 128" in caplog.text
    caplog.clear()
    sysctl.write_text("4096\n")
    assert check_somaxconn(2048, sysctl) == 4096
    assert check_somaxconn(2048, tmp_path / "missing") is None
    assert not caplog.text
