"""The uvicorn settings `sentiment-serve` runs with: one function, so tests build servers the same way.

The knobs that decide whether every request gets an HTTP answer are Settings fields (app/config.py):
keep_alive_timeout_s (uvicorn's timeout_keep_alive), listen_backlog (backlog) and max_connections
(limit_concurrency). Their defaults and why: docs/operations.md, "Bursts".
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from app.config import Settings
from app.lifecycle.protocol import http_protocol

log = logging.getLogger("app.lifecycle")

DEFAULT_BACKLOG = 2048  # uvicorn's own default
FD_RESERVE = 256  # descriptors kept for model files, logs, threads, the store watcher and accept() itself
SOMAXCONN = Path("/proc/sys/net/core/somaxconn")


def listen_backlog(settings: Settings) -> int:
    # Every admitted input may come on a connection of its own, and in a burst the saturated event loop
    # accepts late: the queue holds at least as many as may be admitted.
    if settings.listen_backlog is not None:
        return settings.listen_backlog
    return max(DEFAULT_BACKLOG, settings.queue_capacity)


def open_files_limit() -> int | None:
    """Raise the soft open-files limit to the hard one (children inherit it); the soft limit now, None if
    unlimited or unknown."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return None if soft == resource.RLIM_INFINITY else soft


def connection_limit(settings: Settings) -> int | None:
    """Most open connections: past it uvicorn answers (503) instead of accept() failing with EMFILE, which
    leaves the client waiting in the listen queue with no answer. The reserve keeps accept() possible."""
    if settings.max_connections is not None:
        return settings.max_connections
    files = open_files_limit()
    return None if files is None else max(64, files - FD_RESERVE)


def uvicorn_config(
    app: object,
    settings: Settings,
    closing: Callable[[], bool] | None = None,
    reject: Callable[[str], None] | None = None,
    **overrides: Any,
) -> uvicorn.Config:
    """closing and reject: see app/lifecycle/protocol.py `http_protocol`; overrides: any uvicorn.Config field."""
    protocol = http_protocol(closing, reject)
    limit = connection_limit(settings)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "workers": 1,
        "loop": "auto",  # uvloop when installed
        "http": protocol or "auto",
        "lifespan": "on",
        "log_config": None,  # keep the logging set up by app/cli.py
        "access_log": settings.access_log,
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        "backlog": listen_backlog(settings),
        # uvicorn refuses when len(connections) >= limit, counting the connection asking: +1 lets exactly
        # max_connections be served.
        "limit_concurrency": None if limit is None else limit + 1,
        # After the drain only responses already being written remain.
        "timeout_graceful_shutdown": 5,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)  # type: ignore[arg-type]


def check_somaxconn(backlog: int, path: Path = SOMAXCONN) -> int | None:
    """Warn when the kernel caps the listen queue below `backlog`; returns the cap (None if unknown)."""
    try:
        somaxconn = int(path.read_text())
    except (OSError, ValueError):
        return None
    if somaxconn < backlog:
        log.warning(
            "net.core.somaxconn is %d: the listen queue holds %d connections, not %d; connections beyond it "
            "in a burst wait for SYN retransmits (1 s, 3 s, ...): raise it (sysctl) or lower listen_backlog",
            somaxconn,
            somaxconn,
            backlog,
        )
    return somaxconn
