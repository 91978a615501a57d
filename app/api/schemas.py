"""Request and response bodies (and their JSON encoding: orjson, straight from dicts)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema
from starlette.responses import Response

from app.errors import EmptyInput


def json_response(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise with orjson and skip response-model validation: the hot path builds plain dicts."""
    return Response(orjson.dumps(content), status_code, headers, media_type="application/json")


# The documented schema says what the handler enforces (non-blank texts, non-empty lists) while
# validation itself stays in `text_list`, which answers with the `empty_input` error type.
_TEXT_SCHEMA = {"type": "string", "minLength": 1, "pattern": r"\S"}
Text = Annotated[str, WithJsonSchema(_TEXT_SCHEMA)]
TextList = Annotated[list[Text], WithJsonSchema({"type": "array", "items": _TEXT_SCHEMA, "minItems": 1})]


def _request_schema(schema: dict[str, Any]) -> None:
    for name in ("text", "texts", "inputs"):
        schema["properties"][name].pop("default", None)  # absent, never null
    schema["oneOf"] = [{"required": [name]} for name in ("text", "texts", "inputs")]
    schema["examples"] = [
        {"text": "A gripping, beautifully shot film."},
        {"texts": ["Loved it.", "A tedious mess."], "raw_scores": False},
        {"inputs": ["Loved it.", "A tedious mess."]},
    ]


class PredictRequest(BaseModel):
    """Exactly one of `text`, `texts` or `inputs` (the text-embeddings-inference shape)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_request_schema)

    text: Text | SkipJsonSchema[None] = Field(None, description="One text.")
    texts: TextList | SkipJsonSchema[None] = Field(None, description="Several texts, answered in order.")
    inputs: Text | TextList | SkipJsonSchema[None] = Field(None, description="TEI-compatible: one text or a list.")
    raw_scores: bool = Field(False, description="Return raw logits instead of calibrated probabilities.")
    truncate: bool | None = Field(
        None, description="Truncate over-long texts (true) or answer 413 (false); default: server setting."
    )
    timeout_s: float | None = Field(
        None, gt=0, le=3600, description="Deadline for this request in seconds (default: server setting)."
    )

    @field_validator("text", "texts", "inputs", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Runs only for keys actually sent: an explicit null is not "absent".
        if value is None:
            raise ValueError("must be a string or a list of strings, not null")
        return value

    @field_validator("text", "texts", "inputs")
    @classmethod
    def _encodable(cls, value: str | list[str] | None) -> str | list[str] | None:
        # JSON can carry lone surrogates ("\ud800"); they cannot be tokenized, so refuse them here.
        for text in [value] if isinstance(value, str) else value or ():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(f"text is not valid Unicode ({exc.reason})") from None
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> PredictRequest:
        given = [name for name in ("text", "texts", "inputs") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of 'text', 'texts' or 'inputs' (got {given or 'none'})")
        return self

    def text_list(self) -> list[str]:
        value = self.text if self.text is not None else self.texts if self.texts is not None else self.inputs
        texts = [value] if isinstance(value, str) else list(value or [])
        if not texts:
            raise EmptyInput("no texts given")
        for i, text in enumerate(texts):
            if not text.strip():
                raise EmptyInput(f"text {i} is empty")
        return texts


class ModelRef(BaseModel):
    name: str
    version: int


class Prediction(BaseModel):
    label: str = Field(description="The most likely label.")
    score: float = Field(description="Probability of `label` (or its logit with raw_scores).")
    probabilities: dict[str, float] | None = Field(
        None, description="Temperature-calibrated probability of every label (absent with raw_scores)."
    )
    logits: dict[str, float] | None = Field(None, description="Raw logit of every label (only with raw_scores).")
    truncated: bool = Field(description="The text was cut to the model's token limit.")


class PredictResponse(BaseModel):
    model: ModelRef
    request_id: str
    predictions: list[Prediction]


class ReloadRequest(BaseModel):
    """POST /v1/models/reload: the version to serve next."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"version": "production"}, {"version": 4}]}
    )

    version: (
        Annotated[int, Field(ge=1, le=10**9)] | Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    ) = Field(description="A version number, an alias (e.g. 'production') or 'latest'.")


class ReloadResponse(BaseModel):
    outcome: Literal["success", "unchanged"]
    name: str
    target: str = Field(description="The version asked for, as given.")
    trigger: str = Field(description="'admin' or 'watch:<alias>'.")
    model: ModelRef = Field(description="The version serving now.")
    previous: ModelRef = Field(description="The version that served before.")
    switched_after_s: float | None = Field(None, description="Seconds from the request until the switch.")
    estimated_memory_bytes: int | None = Field(None, description="Estimated extra memory of the new version.")
    previous_released: bool | None = Field(
        None, description="Every request pinned to the previous version was answered and it was released."
    )
    canary: dict[str, Any] | None = Field(None, description="The new version's canary verdict.")


class ErrorResponse(BaseModel):
    error: str = Field(description="What went wrong, for people.")
    error_type: str = Field(description="Stable machine-readable type (see docs/api.md).")


class HealthResponse(BaseModel):
    status: Literal["ready", "loading", "warming", "draining", "stopped", "failed"]
    model: ModelRef | None = None
    device: str | None = None
    dtype: str | None = None
    layout: Literal["packed", "padded"] | None = Field(None, description="How batches run (packed: padding-free).")
    queue_depth: int = 0
    error: str | None = Field(None, description="Why start-up failed (status 'failed' only).")


class LiveResponse(BaseModel):
    status: Literal["alive"]


class ModelInfo(BaseModel):
    name: str
    version: int
    labels: list[str]
    temperature: float
    max_length: int
    device: str
    dtype: str
    created_at: str | None = None
    base_model: Any = None
    dataset: Any = None
    metrics: Any = None
    precision_parity: dict[str, Any] | None = None
    precision: dict[str, Any] | None = Field(
        None, description="How dtype was chosen: requested setting, candidates, skipped ones and why, parity used."
    )
    layout: Literal["packed", "padded"] | None = Field(None, description="How batches run (packed: padding-free).")
    packing: dict[str, Any] | None = Field(
        None, description="Why that layout: requested setting, reason, the packed-vs-padded parity record used."
    )
    quality: dict[str, Any] | None = Field(
        None, description="The canary verdict, prediction statistics and drift scores, feedback state."
    )
    shadow: dict[str, Any] | None = Field(None, description="The shadow candidate scoring live traffic, if any.")


class ModelsResponse(BaseModel):
    models: list[ModelInfo]


_ERROR_DESCRIPTIONS = {
    401: "API key configured and missing or wrong (`unauthorized`).",
    413: "Too many texts (`too_many_texts`), body too large (`body_too_large`) or, with truncation off, "
    "a text over the token limit (`input_too_long`).",
    422: "Malformed JSON (`invalid_json`), invalid body (`invalid_request`) or empty input (`empty_input`).",
    429: "Queue full (`queue_full`); see the Retry-After header.",
    503: "Not ready (`not_ready`), shutting down (`draining`) or the batch failed (`inference_failed`).",
    504: "Deadline exceeded before the prediction was ready (`deadline_exceeded`).",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer with."""
    return {code: {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS[code]} for code in codes}
