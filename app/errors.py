"""Every error the service answers with: HTTP status + stable `error_type` string.

The batching engine raises these too, so this module imports no web framework; the HTTP layer
renders them (app/api/error_handlers.py).
"""

from __future__ import annotations

from typing import ClassVar


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


class TooManyWindows(ServiceError):
    """Chunk mode: the request's texts make more windows (model inputs) than one request may."""

    status_code = 413
    error_type = "too_many_windows"


class QueueFull(ServiceError):
    status_code = 429
    error_type = "queue_full"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, {"Retry-After": str(retry_after_s)})


class TooManyConnections(ServiceError):
    """More open connections than max_connections: answered at the HTTP edge (app/lifecycle/protocol.py)."""

    status_code = 503
    error_type = "too_many_connections"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, {"Retry-After": str(retry_after_s), "Connection": "close"})


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


class CanaryFailed(ServiceError):
    """The version does not reproduce its published canary answers on this host; it does not serve."""

    status_code = 422
    error_type = "canary_failed"


# ---- feedback (app/quality/feedback.py) -------------------------------------------------------
class PredictionNotFound(ServiceError):
    """Feedback names a request id (or index) the service has no recent answer for: unknown or expired."""

    status_code = 404
    error_type = "prediction_not_found"


class UnknownLabel(ServiceError):
    status_code = 422
    error_type = "unknown_label"


class DuplicateFeedback(ServiceError):
    status_code = 409
    error_type = "duplicate_feedback"


class TextMismatch(ServiceError):
    """The client's text differs from the text the service answered for that request id."""

    status_code = 422
    error_type = "text_mismatch"


class TooManyItems(ServiceError):
    status_code = 413
    error_type = "too_many_items"


class FeedbackDisabled(ServiceError):
    status_code = 403
    error_type = "feedback_disabled"


class FeedbackStoreFull(ServiceError):
    """Storing the feedback would pass the feedback directory's size cap; nothing was recorded."""

    status_code = 507
    error_type = "feedback_store_full"


class FeedbackNotStored(ServiceError):
    """Writing the feedback failed (a disk error); nothing was recorded, retrying is safe."""

    status_code = 503
    error_type = "feedback_not_stored"


# ---- shadow scoring (app/lifecycle/shadow.py) ---------------------------------------------------
class ShadowConflict(ServiceError):
    status_code = 409
    error_type = "shadow_conflict"


class ShadowNotRunning(ServiceError):
    status_code = 404
    error_type = "shadow_not_running"


class StoreCorrupt(ServiceError):
    """A model store file (aliases.json) cannot be read: an operator must repair it (the message says how)."""

    status_code = 503
    error_type = "store_corrupt"


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
        TooManyWindows,
        QueueFull,
        TooManyConnections,
        NotReady,
        Draining,
        InferenceFailed,
        DeadlineExceeded,
        AdminDisabled,
        ModelNotFound,
        SwapInProgress,
        ModelInvalid,
        InsufficientMemory,
        CanaryFailed,
        PredictionNotFound,
        UnknownLabel,
        DuplicateFeedback,
        TextMismatch,
        TooManyItems,
        FeedbackDisabled,
        FeedbackStoreFull,
        FeedbackNotStored,
        ShadowConflict,
        ShadowNotRunning,
        StoreCorrupt,
    )
}


def error_body(message: str, error_type: str) -> dict[str, str]:
    return {"error": message, "error_type": error_type}
