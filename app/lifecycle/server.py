"""uvicorn, one worker, with a graceful drain on SIGTERM/SIGINT.

uvicorn's own handling stops listening at once and then re-raises the signal (exit status 143).
Here the first signal flips readiness to 503 and stops admissions while the listener stays open,
waits for every admitted request to be answered (up to drain_timeout_s), then lets uvicorn close
connections and exit with status 0. A second signal cuts the drain short. From the first signal on,
responses carry `Connection: close` (app/lifecycle/protocol.py), so clients stop reusing connections
that the end of the drain closes. The uvicorn settings: app/lifecycle/uvicorn_config.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from app.config import Settings
from app.lifecycle.service import Service, State
from app.lifecycle.uvicorn_config import check_somaxconn, uvicorn_config

log = logging.getLogger("app.lifecycle")


class DrainingServer(uvicorn.Server):
    def __init__(self, app: object, service: Service, settings: Settings, **overrides: Any) -> None:
        """overrides: uvicorn.Config fields (tests pass port=0, smaller timeouts)."""
        self.service = service
        self.drain_timeout_s = settings.drain_timeout_s
        self.exit_code = 0
        self._drain: asyncio.Task[None] | None = None
        config = uvicorn_config(app, settings, closing=self.closing, reject=service.metrics.reject, **overrides)
        super().__init__(config)

    def closing(self) -> bool:
        """Responses close their connection: a drain has begun (here or through the service)."""
        return self._drain is not None or self.service.state in (State.DRAINING, State.STOPPED)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            yield
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self._drain is None:
            log.info("%s: draining (readiness 503, no new requests, finishing admitted ones)", name)
            self.begin_drain()
        else:
            # Skip the rest of the drain; shutdown still fails what is left with 503s.
            log.warning("%s again: exiting without waiting for the drain", name)
            self.should_exit = True

    def begin_drain(self) -> None:
        """What the first signal does (on the event loop): drain, then exit."""
        if self._drain is not None:
            return
        self._drain = asyncio.ensure_future(self._drain_then_exit())
        # Requests in progress are answered with Connection: close; later ones see closing().
        for connection in list(self.server_state.connections):
            close_after_response = getattr(connection, "close_after_response", None)
            if close_after_response is not None:
                close_after_response()

    async def _drain_then_exit(self) -> None:
        await self.service.drain(self.drain_timeout_s)
        self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self.service.state is State.FAILED:
            self.exit_code = self.service.exit_code  # 2: the model must not be served (a failed canary)
            return True
        return await super().on_tick(counter)


def serve(app: object, service: Service, settings: Settings) -> int:
    server = DrainingServer(app, service, settings)
    config = server.config
    somaxconn = check_somaxconn(config.backlog)
    log.info(
        "HTTP: keep-alive %s s, listen backlog %d (net.core.somaxconn %s), at most %s open connections",
        config.timeout_keep_alive,
        config.backlog,
        somaxconn if somaxconn is not None else "unknown",
        config.limit_concurrency - 1 if config.limit_concurrency is not None else "unlimited",
    )
    server.run()
    if server.exit_code == 0 and not server.started:
        return 1  # could not bind, or lifespan start-up failed
    return server.exit_code
