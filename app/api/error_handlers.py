"""Render every error as {"error", "error_type"} with its status, and log one line per error response."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.api.log_limit import RateLimitedLog
from app.api.schemas import json_response
from app.api.validation import summarise_validation
from app.errors import InvalidJson, ServiceError, error_body
from app.metrics import Metrics

log = logging.getLogger("app.errors")

# Statuses Starlette itself raises (routing, methods) and the type we give them.
_HTTP_TYPES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 401: "unauthorized"}


def unparsable_body_message(cause: BaseException | None) -> str:
    """Why FastAPI could not parse a body it answers 400 for (the JSON parser's own errors are 422 already)."""
    if isinstance(cause, UnicodeDecodeError):
        return f"request body is not JSON text: its bytes are not valid UTF-8 ({cause.reason} at byte {cause.start})"
    if isinstance(cause, RecursionError):
        return "request body nests JSON too deeply to parse (a request needs 2 levels: an object holding a list)"
    return "request body could not be parsed as JSON"


def error_response(
    metrics: Metrics,
    overload_log: RateLimitedLog,
    request_id: str,
    path: str,
    status: int,
    message: str,
    error_type: str,
    headers: dict[str, str],
) -> Response:
    """The one way an error is answered: the JSON body, its count in the metrics, one log line (429s through
    `overload_log`, at most one line a second: they come in floods exactly when the service is overloaded)."""
    metrics.reject(error_type)
    line = "request %s %s -> %d %s: %s"
    if status == 429:
        overload_log.warning(line, request_id, path, status, error_type, message)
    else:
        log.log(logging.WARNING if status >= 500 else logging.INFO, line, request_id, path, status, error_type, message)
    return json_response(error_body(message, error_type), status, headers)


def service_error_response(
    metrics: Metrics, overload_log: RateLimitedLog, request_id: str, path: str, exc: ServiceError
) -> Response:
    return error_response(
        metrics, overload_log, request_id, path, exc.status_code, exc.message, exc.error_type, exc.headers
    )


def register_error_handlers(app: FastAPI, overload_log: RateLimitedLog) -> None:
    """FastAPI's parse-failure 400 becomes a 422 like any other malformed body."""

    def respond(request: Request, status: int, message: str, error_type: str, headers: dict[str, str]) -> Response:
        request_id = getattr(request.state, "request_id", "-")
        metrics = request.app.state.metrics
        return error_response(metrics, overload_log, request_id, request.url.path, status, message, error_type, headers)

    async def on_service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        return respond(request, exc.status_code, exc.message, exc.error_type, exc.headers)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        message, error_type = summarise_validation(list(exc.errors()))
        return respond(request, 422, message, error_type, {})

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 400:
            # FastAPI answers 400 when the body cannot be decoded (bytes that are not UTF-8) or the
            # parser gives up (nesting deeper than Python's recursion limit): to clients that is the
            # same mistake as malformed JSON.
            message = unparsable_body_message(exc.__cause__)
            return respond(request, 422, message, InvalidJson.error_type, {})
        error_type = _HTTP_TYPES.get(exc.status_code, f"http_{exc.status_code}")
        return respond(request, exc.status_code, str(exc.detail), error_type, dict(exc.headers or {}))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # A bug, not an input problem: keep it a 500 so it is noticed, but in the same shape.
        log.exception("unhandled error on %s", request.url.path, exc_info=exc)
        return json_response(error_body("internal error", "internal_error"), 500, {})

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
