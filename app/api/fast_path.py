"""POST /predict without FastAPI's routing, dependency injection and request objects.

At hundreds of one-text requests a second the event loop's own cost per request decides the ceiling
share; FastAPI's machinery around the endpoint (routing, dependency solving, body parsing and
validation in Python, the exception middleware) was measured at about half of it (docs/performance.md).
This middleware answers the hot path directly and gives nothing up: the body is validated by the same
`PredictRequest` model (pydantic-core parses the JSON bytes itself), the same Bearer-key rule applies
(app/api/auth.py), limits, admission and batching are the route's own (`run_prediction`), and every
error is rendered by the same function as FastAPI's handlers (JSON body, stable `error_type`, metrics,
one log line). It sits inside the request-id, load-shedding and body-limit middlewares, so those apply
unchanged; the FastAPI route stays registered for the OpenAPI schema.
"""

from __future__ import annotations

import json

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.auth import bearer_token, check_api_key
from app.api.error_handlers import error_response, service_error_response, unparsable_body_message
from app.api.log_limit import RateLimitedLog
from app.api.routes.predict import run_prediction
from app.api.schemas import PredictRequest, json_response
from app.api.validation import summarise_validation
from app.errors import BodyTooLarge, Cancelled, InvalidJson, InvalidRequest, ServiceError
from app.lifecycle.service import Service
from app.metrics import Metrics

PATH = "/predict"


class PredictFastPath:
    def __init__(self, app: ASGIApp, service: Service, metrics: Metrics, overload_log: RateLimitedLog) -> None:
        self.app = app
        self.service = service
        self.metrics = metrics
        self.overload_log = overload_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id", "-")
        try:
            authorization, content_type = _headers(scope)
            check_api_key(self.service.settings.api_key, bearer_token(authorization))
            if not _is_json(content_type):
                raise InvalidRequest("the body must be JSON (Content-Type: application/json)")
            body = await _read_body(receive)
            try:
                payload = _validate(body)
            except ValidationError as exc:
                message, error_type = summarise_validation(exc.errors(include_url=False))  # type: ignore[arg-type]
                response = error_response(
                    self.metrics, self.overload_log, request_id, PATH, 422, message, error_type, {}
                )
            else:
                response = json_response(await run_prediction(payload, self.service, request_id, receive))
        except ServiceError as exc:
            response = service_error_response(self.metrics, self.overload_log, request_id, PATH, exc)
        except HTTPException as exc:  # the body-limit middleware's stream check (413)
            error = BodyTooLarge(str(exc.detail)) if exc.status_code == 413 else None
            if error is None:
                raise
            response = service_error_response(self.metrics, self.overload_log, request_id, PATH, error)
        await response(scope, receive, send)


def _validate(body: bytes) -> PredictRequest:
    try:
        return PredictRequest.model_validate_json(body)
    except ValidationError as exc:
        if not any(err["type"] == "json_invalid" for err in exc.errors()):
            raise
    # pydantic-core's parser refuses some JSON that Python's accepts (lone surrogate escapes), and words its
    # refusals differently: judge unparsable bodies exactly as the FastAPI route would (same error type, same
    # message), on this slow path only.
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, RecursionError) as exc:
        raise InvalidJson(unparsable_body_message(exc)) from None
    except json.JSONDecodeError as exc:
        error = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "ctx": {"error": exc.msg},
        }
        raise InvalidJson(summarise_validation([error])[0]) from None
    return PredictRequest.model_validate(parsed)


def _is_json(content_type: str | None) -> bool:
    """application/json or application/<anything>+json, as FastAPI decides whether a body is JSON."""
    if not content_type:
        return False
    kind, _, subtype = content_type.split(";", 1)[0].strip().partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _headers(scope: Scope) -> tuple[str | None, str | None]:
    authorization = content_type = None
    for key, value in scope["headers"]:
        if key == b"authorization":
            authorization = value.decode("latin-1")
        elif key == b"content-type":
            content_type = value.decode("latin-1").lower()
    return authorization, content_type


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise Cancelled("client disconnected while sending the body")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
