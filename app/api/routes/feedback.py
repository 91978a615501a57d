"""POST /feedback: the correct label for answers of /predict, recorded all-or-nothing (app/quality/feedback.py)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field
from starlette.responses import Response

from app.api.deps import ServiceDep, SettingsDep
from app.api.quality_schemas import FeedbackItem, FeedbackResponse
from app.api.schemas import ErrorResponse, json_response
from app.errors import FeedbackDisabled, TooManyItems, Unauthorized
from app.quality import feedback as book

router = APIRouter(tags=["feedback"])

_bearer = HTTPBearer(auto_error=False, description="Needed only when a feedback or API key is configured.")

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        401: "Key missing or wrong (`unauthorized`).",
        403: "Feedback is turned off (`feedback_disabled`, SENTIMENT_FEEDBACK_RECORDS=0).",
        404: "No recent answer has that request id or index: unknown or expired (`prediction_not_found`).",
        409: "Feedback for that answer was already given, or appears twice in the call (`duplicate_feedback`).",
        413: "More items than max_texts_per_request (`too_many_items`), or the body is too large (`body_too_large`).",
        422: "Invalid body (`invalid_request`, `invalid_json`), a label the answering version does "
        "not have (`unknown_label`), or a text that differs from the one answered (`text_mismatch`).",
        503: "Writing the feedback failed (`feedback_not_stored`); nothing was recorded, retry.",
        507: "The feedback directory reached its size cap (`feedback_store_full`); nothing was recorded.",
    }.items()
}


async def require_feedback_key(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Like /predict; a separate SENTIMENT_FEEDBACK_API_KEY, when set, is the only key accepted here."""
    key = settings.feedback_api_key or settings.api_key
    if key is None:
        return
    if credentials is None:
        raise Unauthorized("missing key: send 'Authorization: Bearer <key>'")
    if not secrets.compare_digest(credentials.credentials.encode(), key.get_secret_value().encode()):
        raise Unauthorized("invalid key")


@router.post(
    "/feedback",
    response_model=FeedbackResponse,
    responses=_ERRORS,
    dependencies=[Depends(require_feedback_key)],
    summary="Give the correct label for one or more answers",
)
async def feedback(
    payload: Annotated[
        FeedbackItem | Annotated[list[FeedbackItem], Field(min_length=1)],
        Body(description="One item, or a list recorded together (all or none)."),
    ],
    service: ServiceDep,
) -> Response:
    items = payload if isinstance(payload, list) else [payload]
    limit = service.settings.max_texts_per_request
    if len(items) > limit:
        raise TooManyItems(f"{len(items)} feedback items in one call; the limit is {limit}")
    if not service.quality.feedback_enabled:
        raise FeedbackDisabled("feedback is turned off on this server (SENTIMENT_FEEDBACK_RECORDS=0)")
    converted = [book.FeedbackItem(i.request_id, i.label, i.index, i.text) for i in items]
    return json_response(await service.quality.feedback.submit(converted))
