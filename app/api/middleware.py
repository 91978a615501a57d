"""Pure ASGI middleware at the HTTP edge: request ids + per-route metrics, and the body-size limit.

Plain ASGI rather than BaseHTTPMiddleware: these run on every request and must stay cheap.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.schemas import json_response
from app.errors import BodyTooLarge, error_body
from app.metrics import Metrics

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._~:/+=-]{1,128}$")


class RequestContextMiddleware:
    """Assigns the request id (honouring a sane incoming X-Request-ID), echoes it, records metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics, known_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.metrics = metrics
        # Requests refused before routing (413 on Content-Length) still count under their route;
        # any other unmatched path is one label, so scanners cannot blow up the series count.
        self.known_paths = known_paths
        # Ids are unique, not secret: a random per-process prefix plus a counter costs no syscall
        # per request (uuid4 reads the OS entropy pool every time).
        self._id_prefix = uuid.uuid4().hex[:16]
        self._id_counter = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = b""
        for key, value in scope["headers"]:
            if key == REQUEST_ID_HEADER:
                request_id = value
                break
        if not _SANE_REQUEST_ID.match(request_id):
            request_id = f"{self._id_prefix}{next(self._id_counter):016x}".encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route is None:
                route = scope["path"] if scope["path"] in self.known_paths else "unmatched"
            self.metrics.observe_request(route, status, time.perf_counter() - started)


class _StreamTooLarge(HTTPException):
    # An HTTPException so FastAPI's body reader re-raises it (anything else becomes its 400).
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes")


class BodyLimitMiddleware:
    """413 before parsing: at once from Content-Length, or as soon as a streamed body passes the limit."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.limit = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                declared = value
                break
        # A malformed Content-Length never gets here: the HTTP server rejects it first.
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send, f"request body of {declared.decode('latin-1')} bytes")
            return
        received = 0
        limit = self.limit

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _StreamTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, what: str) -> None:
        self.metrics.reject(BodyTooLarge.error_type)
        message = f"{what} exceeds the limit of {self.limit} bytes"
        response = json_response(error_body(message, BodyTooLarge.error_type), 413, {"Connection": "close"})
        await response(scope, receive, send)
