"""Real `sentiment-serve` processes on 127.0.0.1, for tests that need the whole program."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.helpers.net import free_port

# 1,000 concurrent clients need 1,000 sockets in the test process and as many in the server.
FILE_LIMIT = 8192


def serve_command() -> list[str]:
    script = Path(sys.executable).with_name("sentiment-serve")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def run_serve(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `sentiment-serve` to completion (for start-up refusals); its exit status and output."""
    return subprocess.run(
        [*serve_command(), "--device", "cpu", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def raise_file_limit(wanted: int = FILE_LIMIT) -> int:
    """Raise the soft open-files limit (children inherit it); returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


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

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(15)


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


def start_serve(
    models_dir: Path, log_dir: Path, *args: str, env: dict[str, str] | None = None, threads: int = 1
) -> ServeProcess:
    """Start `sentiment-serve` on the CPU with extra flags/env and wait until /health is 200."""
    raise_file_limit()
    port = free_port()
    log_path = log_dir / f"serve-{port}.log"
    argv = [*serve_command(), "--models-dir", str(models_dir), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--device", "cpu", "--torch-threads", str(threads), *args]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True
        )
    server = ServeProcess(f"http://127.0.0.1:{port}", port, process, log_path)
    try:
        wait_healthy(server.url, process, log_path)
    except BaseException:
        server.kill()
        raise
    return server
