"""Render every error as {"error", "error_type"} with its status, and log one line per error response."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.api.schemas import json_response
from app.errors import InvalidJson, InvalidRequest, ServiceError, error_body
from app.metrics import Metrics

log = logging.getLogger("app.errors")

# Statuses Starlette itself raises (routing, methods) and the type we give them.
_HTTP_TYPES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 401: "unauthorized"}


def summarise_validation(errors: list[dict[str, Any]]) -> tuple[str, str]:
    """One readable line from pydantic's error list, and whether the JSON itself was broken."""
    if any(err.get("type") == "json_invalid" for err in errors):
        return "request body is not valid JSON", InvalidJson.error_type
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more, InvalidRequest.error_type


def error_response(
    metrics: Metrics, request_id: str, path: str, status: int, message: str, error_type: str, headers: dict[str, str]
) -> Response:
    """The one way an error is answered: the JSON body, its count in the metrics, one log line."""
    metrics.reject(error_type)
    level = logging.WARNING if status >= 500 else logging.INFO
    log.log(level, "request %s %s -> %d %s: %s", request_id, path, status, error_type, message)
    return json_response(error_body(message, error_type), status, headers)


def service_error_response(metrics: Metrics, request_id: str, path: str, exc: ServiceError) -> Response:
    return error_response(metrics, request_id, path, exc.status_code, exc.message, exc.error_type, exc.headers)


def register_error_handlers(app: FastAPI) -> None:
    """FastAPI's parse-failure 400 becomes a 422 like any other malformed body."""

    def respond(request: Request, status: int, message: str, error_type: str, headers: dict[str, str]) -> Response:
        request_id = getattr(request.state, "request_id", "-")
        metrics = request.app.state.metrics
        return error_response(metrics, request_id, request.url.path, status, message, error_type, headers)

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
            # FastAPI answers 400 when the body cannot even be decoded (e.g. invalid UTF-8):
            # to clients that is the same mistake as malformed JSON.
            return respond(request, 422, "request body is not valid UTF-8 JSON", InvalidJson.error_type, {})
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
