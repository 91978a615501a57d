"""Start a contender server as its own process group on 127.0.0.1, wait until it serves, stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Server:
    name: str
    command: list[str]
    port: int
    health_path: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    preexec: Callable[[], None] | None = None  # e.g. join the run's CPU cgroup (bench/cpugroup.py)
    process: subprocess.Popen[bytes] | None = None
    # Run from another source tree (`python -m` puts the working directory first on the path): the same
    # harness against an older checkout, for before/after comparisons.
    cwd: Path | None = None

    def start(self, timeout_s: float = 300.0) -> Server:
        env = {**os.environ, **OFFLINE_ENV, **self.env}
        # The project root on the path: `python -m bench...` and `-m app.cli` work without an install.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        log = self.log_path.open("wb")
        # A new session so stop() can end the whole group (LitServe runs worker processes).
        self.process = subprocess.Popen(
            self.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=self.preexec,
            cwd=self.cwd,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"{self.name} exited with {code}; log: {self.log_path}\n{self.tail()}")
            try:
                status, _ = http_get(self.port, self.health_path, timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout_s:.0f}s; log: {self.log_path}\n{self.tail()}")

    def restart(self, timeout_s: float = 300.0) -> Server:
        self.stop()
        return self.start(timeout_s)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of every live process in the server's group, all threads."""
        return group_cpu_seconds(self.process.pid) if self.process is not None else 0.0

    def thread_cpu_seconds(self) -> dict[str, float]:
        """The server process's CPU by thread role: its main thread (the event loop: HTTP, validation,
        batching), threads named `tokenize*`, and all others (inference workers and their intra-op threads,
        which inherit the worker's name). See app/engine/workers.py `name_os_thread`."""
        return thread_cpu_seconds(self.process.pid) if self.process is not None else {}

    def pause(self) -> None:
        """SIGSTOP the whole group: an idle server must not take CPU from the one being measured
        (LitServe's idle processes poll their queues, ~12% of a core here)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            with _suppress_lookup():
                os.killpg(self.process.pid, sig)

    def stop(self, grace_s: float = 20.0) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        with _suppress_lookup():
            os.killpg(proc.pid, signal.SIGCONT)  # a paused server cannot handle SIGTERM
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            with _suppress_lookup():
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        with _suppress_lookup():  # LitServe workers outliving their parent
            os.killpg(proc.pid, signal.SIGKILL)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _suppress_lookup() -> contextlib.suppress:
    return contextlib.suppress(ProcessLookupError, PermissionError)


def group_cpu_seconds(pgid: int) -> float:
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(fields[2]) == pgid:  # fields[0] is the state: pgrp is the 5th field of /proc/PID/stat
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    roles = {"event_loop": 0.0, "tokenize": 0.0, "forward": 0.0}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("[0-9]*"):
        try:
            comm = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the thread ended while we looked
        role = "event_loop" if task.name == str(pid) else "tokenize" if comm.startswith("tokenize") else "forward"
        roles[role] += (int(fields[11]) + int(fields[12])) / tick
    return roles


def python_module(module: str, *args: str, nice: int = 0) -> list[str]:
    """`python -m module args`, under `nice -n` when asked (every process of a run gets the same)."""
    prefix = ["nice", "-n", str(nice)] if nice else []
    return [*prefix, sys.executable, "-m", module, *args]
