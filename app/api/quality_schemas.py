"""Bodies of the model-quality endpoints: POST /feedback and /v1/models/shadow."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api.schemas import NON_BLANK_PATTERN, ModelRef, is_blank

# The ids /predict returns (or a sane client X-Request-ID: app/api/middleware.py), and label names.
_REQUEST_ID = r"^[A-Za-z0-9._~:/+=-]{1,128}$"
_VERSION = Annotated[int, Field(ge=1, le=10**9)] | Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]


class FeedbackItem(BaseModel):
    """The correct label for one answer of /predict."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"request_id": "5d0c6f1c0a7e4a530000000000000001", "label": "negative"},
                {
                    "request_id": "5d0c6f1c0a7e4a530000000000000002",
                    "index": 1,
                    "label": "positive",
                    "text": "Loved it.",
                },
            ]
        },
    )

    request_id: str = Field(pattern=_REQUEST_ID, description="The `request_id` /predict answered with.")
    label: str = Field(min_length=1, max_length=256, description="The correct label (one of the model's labels).")
    index: int | None = Field(
        None, ge=0, le=1 << 20, description="Which text of that request (0-based); needed when it had several."
    )
    text: str | None = Field(
        None,
        min_length=1,
        json_schema_extra={"pattern": NON_BLANK_PATTERN},
        max_length=1 << 20,
        description="The text, when the client has it: stored with the label so the correction can train the next "
        "version. Must equal the text answered when the server kept it.",
    )

    @field_validator("text")
    @classmethod
    def _encodable(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(f"text is not valid Unicode ({exc.reason})") from None
            if is_blank(value):
                raise ValueError("text is blank")
        return value


class FeedbackAnswer(BaseModel):
    request_id: str
    index: int
    model: ModelRef = Field(description="The version that made the prediction.")
    predicted: str = Field(description="The label it predicted.")
    label: str = Field(description="The label given.")
    correct: bool


class FeedbackResponse(BaseModel):
    accepted: int = Field(description="Items recorded (all of them: a call records all or none).")
    stored: bool = Field(description="Written durably to the feedback directory (false: no directory configured).")
    feedback: list[FeedbackAnswer]


class ShadowRequest(BaseModel):
    """POST /v1/models/shadow: the candidate to score live traffic with."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 4}, {"version": "latest"}]})

    version: _VERSION = Field(description="A version number, an alias or 'latest' (not the active version).")
    share: float | None = Field(
        None, gt=0, le=1, description="Share of requests to score (default: SENTIMENT_SHADOW_SHARE)."
    )


class ShadowStatus(BaseModel):
    version: int
    share: float
    max_busy: float
    started_at: float
    inputs: dict[str, int] = Field(description="offered, scored, dropped, failed, agreed")
    agreement: float | None = Field(description="Share of scored inputs whose label equals the active version's.")
    busy_seconds: float
    queued_requests: int


class ShadowResponse(BaseModel):
    outcome: Literal["started", "stopped", "running", "none"]
    shadow: ShadowStatus | None = None
    replaced: int | None = Field(None, description="The candidate this one replaced.")
    canary: dict[str, Any] | None = Field(None, description="The candidate's canary verdict.")
