"""uvicorn, one worker, with a graceful drain on SIGTERM/SIGINT.

uvicorn's own handling stops listening at once and then re-raises the signal (exit status 143).
Here the first signal flips readiness to 503 and stops admissions while the listener stays open,
waits for every admitted request to be answered (up to drain_timeout_s), then lets uvicorn close
connections and exit with status 0. A second signal cuts the drain short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

import uvicorn

from app.lifecycle.service import Service, State

log = logging.getLogger("app.lifecycle")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, service: Service, drain_timeout_s: float) -> None:
        super().__init__(config)
        self.service = service
        self.drain_timeout_s = drain_timeout_s
        self.exit_code = 0
        self._drain: asyncio.Task[None] | None = None

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
            self._drain = asyncio.ensure_future(self._drain_then_exit())
        else:
            # Skip the rest of the drain; shutdown still fails what is left with 503s.
            log.warning("%s again: exiting without waiting for the drain", name)
            self.should_exit = True

    async def _drain_then_exit(self) -> None:
        await self.service.drain(self.drain_timeout_s)
        self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self.service.state is State.FAILED:
            self.exit_code = self.service.exit_code  # 2: the model must not be served (a failed canary)
            return True
        return await super().on_tick(counter)


def serve(app: object, service: Service, host: str, port: int, drain_timeout_s: float, access_log: bool) -> int:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        workers=1,
        loop="auto",  # uvloop when installed
        http="auto",  # httptools when installed
        lifespan="on",
        log_config=None,  # keep the logging set up by app/cli.py
        access_log=access_log,
        # After the drain only responses already being written remain.
        timeout_graceful_shutdown=5,
    )
    server = DrainingServer(config, service, drain_timeout_s)
    server.run()
    if server.exit_code == 0 and not server.started:
        return 1  # could not bind, or lifespan start-up failed
    return server.exit_code
