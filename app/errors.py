"""Every error the service answers with: HTTP status + stable `error_type` string.

The batching engine raises these too, so this module stays free of web-framework imports
except inside `register_error_handlers`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("app.errors")


class ServiceError(Exception):
    """Base class: an error with a stable type that clients can branch on."""

    status_code: ClassVar[int] = 503
    error_type: ClassVar[str] = "service_error"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InvalidRequest(ServiceError):
    status_code = 422
    error_type = "invalid_request"


class InvalidJson(ServiceError):
    status_code = 422
    error_type = "invalid_json"


class EmptyInput(ServiceError):
    status_code = 422
    error_type = "empty_input"


class Unauthorized(ServiceError):
    status_code = 401
    error_type = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, {"WWW-Authenticate": "Bearer"})


class TooManyTexts(ServiceError):
    status_code = 413
    error_type = "too_many_texts"


class BodyTooLarge(ServiceError):
    status_code = 413
    error_type = "body_too_large"


class InputTooLong(ServiceError):
    status_code = 413
    error_type = "input_too_long"


class QueueFull(ServiceError):
    status_code = 429
    error_type = "queue_full"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, {"Retry-After": str(retry_after_s)})


class NotReady(ServiceError):
    status_code = 503
    error_type = "not_ready"


class Draining(ServiceError):
    status_code = 503
    error_type = "draining"


class InferenceFailed(ServiceError):
    """A forward pass failed; only the requests in that batch see this."""

    status_code = 503
    error_type = "inference_failed"


class DeadlineExceeded(ServiceError):
    status_code = 504
    error_type = "deadline_exceeded"


class Cancelled(ServiceError):
    """The client went away; nobody reads this answer, it only stops the work."""

    status_code = 499
    error_type = "client_disconnected"


class AdminDisabled(ServiceError):
    """Admin endpoints stay off until an admin (or API) key is configured: secure by default."""

    status_code = 403
    error_type = "admin_disabled"


class ModelNotFound(ServiceError):
    status_code = 404
    error_type = "model_not_found"


class SwapInProgress(ServiceError):
    status_code = 409
    error_type = "swap_in_progress"


class ModelInvalid(ServiceError):
    """The target version failed verification, loading or warm-up; the active one keeps serving."""

    status_code = 422
    error_type = "model_invalid"


class InsufficientMemory(ServiceError):
    """Loading the target beside the active version would not fit in device memory."""

    status_code = 503
    error_type = "insufficient_memory"


# Statuses Starlette itself raises (routing, methods) and the type we give them.
_HTTP_TYPES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 401: "unauthorized"}

ERROR_TYPES: dict[str, int] = {
    cls.error_type: cls.status_code
    for cls in (
        InvalidRequest,
        InvalidJson,
        EmptyInput,
        Unauthorized,
        TooManyTexts,
        BodyTooLarge,
        InputTooLong,
        QueueFull,
        NotReady,
        Draining,
        InferenceFailed,
        DeadlineExceeded,
        AdminDisabled,
        ModelNotFound,
        SwapInProgress,
        ModelInvalid,
        InsufficientMemory,
    )
}


def error_body(message: str, error_type: str) -> dict[str, str]:
    return {"error": message, "error_type": error_type}


def _summarise_validation(errors: list[dict[str, Any]]) -> tuple[str, str]:
    """One readable line from pydantic's error list, and whether the JSON itself was broken."""
    if any(err.get("type") == "json_invalid" for err in errors):
        return "request body is not valid JSON", InvalidJson.error_type
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more, InvalidRequest.error_type


def register_error_handlers(app: FastAPI) -> None:
    """Render every error as {"error", "error_type"}; FastAPI's parse-failure 400 becomes a 422."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import Response

    from app.schemas import json_response

    def respond(request: Request, status: int, message: str, error_type: str, headers: dict[str, str]) -> Response:
        request_id = getattr(request.state, "request_id", "-")
        request.app.state.metrics.reject(error_type)
        level = logging.WARNING if status >= 500 else logging.INFO
        log.log(level, "request %s %s -> %d %s: %s", request_id, request.url.path, status, error_type, message)
        return json_response(error_body(message, error_type), status, headers)

    async def on_service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        return respond(request, exc.status_code, exc.message, exc.error_type, exc.headers)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        message, error_type = _summarise_validation(list(exc.errors()))
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
