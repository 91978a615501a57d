"""uvicorn's HTTP protocol, guarded so that a request a client has sent always gets an HTTP answer.

uvicorn (0.54, httptools) arms a connection's idle timer when a response completes, cancels it when the
next bytes are read, and closes the socket when it fires. In a burst the event loop is saturated and
runs the timers that are due before it reads the sockets, so a request already sitting in a reused
connection's socket when its timer came due was closed under the client: the kernel resets the
connection and the client gets no status at all (seen: a close with 268 request bytes unread; 5 of
12,000 requests in bursts of 1,000, docs/operations.md "Bursts"). The guards:

- idle timer: a connection whose socket holds unread bytes is not closed; the timer is re-armed, and
  reading the request (in this loop iteration's I/O phase) cancels it as any read does;
- graceful shutdown: the same for the idle connections uvicorn closes when the server stops;
- drain: once the service drains, responses carry `Connection: close` (and uvicorn closes after them),
  so clients stop reusing connections the server is about to close;
- reset: uvicorn cancels the idle timer only on a clean close; after a reset the armed timer kept the
  dead connection's objects alive for the whole keep-alive period;
- connection limit: uvicorn's plain-text 503 becomes the service's JSON error, with Retry-After.

The h11 protocol (uvicorn without httptools) gets none of this: `http_protocol` returns None for it and
the server logs a warning. The serve extras install httptools (uvicorn[standard]).
"""

from __future__ import annotations

import array
import logging
from collections.abc import Callable
from typing import Any

import orjson

from app.errors import TooManyConnections, error_body

try:  # FIONREAD: bytes received on a socket and not yet read (Linux, macOS)
    import fcntl
    import termios
except ImportError:  # pragma: no cover - Windows
    fcntl = termios = None  # type: ignore[assignment]

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is part of uvicorn[standard]
    HttpToolsProtocol = None  # type: ignore[assignment, misc]

log = logging.getLogger("app.lifecycle")


def unread_bytes(transport: Any) -> int:
    """Bytes waiting in the connection's socket that the event loop has not read yet (0 if unknown)."""
    sock = transport.get_extra_info("socket")
    if sock is None or fcntl is None:
        return 0
    buf = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf)
    except (OSError, ValueError):  # closed meanwhile
        return 0
    return buf[0]


def _never() -> bool:
    return False


def _ignore(_error_type: str) -> None:
    return None


_LIMIT_MESSAGE = "too many open connections; retry later"
_LIMIT_BODY = orjson.dumps(error_body(_LIMIT_MESSAGE, TooManyConnections.error_type))
_LIMIT_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_LIMIT_BODY)).encode()),
    *((name.lower().encode(), value.encode()) for name, value in TooManyConnections(_LIMIT_MESSAGE).headers.items()),
]


async def too_many_connections(scope: Any, receive: Any, send: Any) -> None:
    """The answer past max_connections: the service's error shape instead of uvicorn's plain text."""
    await send({"type": "http.response.start", "status": TooManyConnections.status_code, "headers": _LIMIT_HEADERS})
    await send({"type": "http.response.body", "body": _LIMIT_BODY})


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc, valid-type]
        """uvicorn's httptools protocol with the guards above; `http_protocol` binds `closing` and `reject`."""

        closing: Callable[[], bool] = staticmethod(_never)  # the service is draining: close after responses
        reject: Callable[[str], None] = staticmethod(_ignore)  # count a refusal (Metrics.reject)
        shutting_down = False

        def timeout_keep_alive_handler(self) -> None:
            if not self.transport.is_closing() and unread_bytes(self.transport) > 0:
                # The next request is in the socket already: it is read in this loop iteration's I/O phase,
                # which cancels this timer like any read does.
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )
                return
            super().timeout_keep_alive_handler()

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            # uvicorn cancels the idle timer only on a clean close (exc is None); after a reset the armed
            # timer would hold this connection's protocol, parser and last request for keep_alive_timeout_s.
            self._unset_keepalive_if_required()

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            if self.shutting_down or self.closing():
                self.close_after_response()

        def close_after_response(self) -> None:
            """The request in progress is answered with `Connection: close`, then uvicorn closes the socket."""
            cycle = self.cycle
            if cycle is not None and not cycle.response_started:
                cycle.keep_alive = False

        def shutdown(self) -> None:
            # Graceful shutdown: uvicorn closes idle connections at once. One whose next request has arrived
            # but is unread is read and answered instead (503 draining, Connection: close); uvicorn waits for
            # it up to its graceful-shutdown timeout.
            self.shutting_down = True
            idle = self.cycle is None or self.cycle.response_complete
            if idle and not self.transport.is_closing() and unread_bytes(self.transport) > 0:
                return
            super().shutdown()

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            if app is not self.app:  # uvicorn chose its own plain-text 503: the concurrency limit
                self.reject(TooManyConnections.error_type)
                app = too_many_connections
            super()._start_asgi_task(cycle, app)


def http_protocol(
    closing: Callable[[], bool] | None = None, reject: Callable[[str], None] | None = None
) -> type[Any] | None:
    """The guarded protocol class for one server, or None where httptools is missing (uvicorn's h11 then).

    closing: whether responses must close their connection now (the service drains); reject: counts a
    refusal by error type (Metrics.reject)."""
    if HttpToolsProtocol is None:  # pragma: no cover - uvicorn[standard] installs httptools
        log.warning("httptools is not installed: uvicorn's h11 protocol serves without the keep-alive guards")
        return None
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"closing": staticmethod(closing or _never), "reject": staticmethod(reject or _ignore)},
    )
