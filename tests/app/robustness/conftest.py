"""Fixtures for the reliability and security tests: a real `sentiment-serve` process on 127.0.0.1."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.app.test_cli import serve_command

# 1,000 concurrent clients need 1,000 sockets in the test process and as many in the server.
FILE_LIMIT = 8192


def raise_file_limit(wanted: int = FILE_LIMIT) -> int:
    """Raise the soft open-files limit (children inherit it); returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServeProcess:
    """A running `sentiment-serve`; its combined stdout/stderr go to `log_path`."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    stopped: bool = field(default=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def terminate(self, timeout: float) -> int:
        """SIGTERM and wait; the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, "sentiment-serve exited:\n" + log_path.read_text(errors="replace")
        assert time.monotonic() < deadline, "sentiment-serve not ready in time:\n" + log_path.read_text()
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Start `sentiment-serve` (CPU, one torch thread) with extra flags/env; killed at teardown if still up."""
    started: list[ServeProcess] = []

    def _start(models_dir: Path, *args: str, env: dict[str, str] | None = None) -> ServeProcess:
        raise_file_limit()
        port = free_port()
        log_path = tmp_path / f"serve-{port}.log"
        argv = [*serve_command(), "--models-dir", str(models_dir), "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--device", "cpu", "--torch-threads", "1", *args]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True
            )
        server = ServeProcess(f"http://127.0.0.1:{port}", port, process, log_path)
        started.append(server)
        wait_healthy(server.url, process, log_path)
        return server

    yield _start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(15)
