"""Load shedding at the HTTP edge: a full queue answers 429 before the body is read or parsed.

Under overload most requests are refused, and a refusal that goes through routing, body parsing,
validation and dependency injection costs the event loop about as much as an accepted request
(measured: ~0.5 ms each on the test machine), so a flood of retries starves the requests that were
admitted. The check here is a cheap fast path only; `Batcher.submit` still makes the exact decision.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.auth import bearer_token, key_matches
from app.api.error_handlers import error_response
from app.api.log_limit import RateLimitedLog
from app.errors import QueueFull
from app.lifecycle.service import Service, State
from app.metrics import Metrics


class LoadShedMiddleware:
    def __init__(
        self, app: ASGIApp, service: Service, metrics: Metrics, overload_log: RateLimitedLog, path: str = "/predict"
    ) -> None:
        self.app = app
        self.service = service
        self.metrics = metrics
        self.overload_log = overload_log  # shared with the route's 429s: one line per second for both
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path and scope["method"] == "POST" and self._full(scope):
            request_id = scope.get("state", {}).get("request_id", "-")
            error = QueueFull("queue full; retry later")
            response = error_response(
                self.metrics,
                self.overload_log,
                request_id,
                self.path,
                429,
                error.message,
                error.error_type,
                error.headers,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _full(self, scope: Scope) -> bool:
        service = self.service
        batcher = service.batcher
        if batcher is None or service.state is not State.READY:
            return False  # not ready / draining: the route answers with the right 503
        if batcher.admitted < batcher.policy.queue_capacity:
            return False
        # Without a valid key the route answers 401: overload state is not shown to strangers.
        return self._authorised(scope)

    def _authorised(self, scope: Scope) -> bool:
        key = self.service.settings.api_key
        if key is None:
            return True
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        return key_matches(bearer_token(header.decode("latin-1")), key)
