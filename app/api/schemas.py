"""Request and response bodies (and their JSON encoding: orjson, straight from dicts)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from starlette.responses import Response

from app.api.validation import check_texts, field_error, json_kind, reject_unknown_fields
from app.config import Truncation
from app.errors import EmptyInput


def json_response(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise with orjson and skip response-model validation: the hot path builds plain dicts."""
    return Response(orjson.dumps(content), status_code, headers, media_type="application/json")


# The documented schema says what the handler enforces (non-blank texts, non-empty lists) while
# validation itself stays in `text_list`, which answers with the `empty_input` error type.
# A text must hold a character that is not white space, in the schema's (JSON Schema / ECMA-262) sense of
# white space: Python's str.strip() also strips the control characters 0x1c-0x1f and 0x85, which a client
# reading the schema may send as content. One definition, used by the schema and by the check.
NON_BLANK_PATTERN = r"[^\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
_NON_BLANK = re.compile(NON_BLANK_PATTERN)


def is_blank(text: str) -> bool:
    return _NON_BLANK.search(text) is None


_TEXT_SCHEMA = {"type": "string", "minLength": 1, "pattern": NON_BLANK_PATTERN}
Text = Annotated[str, WithJsonSchema(_TEXT_SCHEMA)]
TextList = Annotated[list[Text], WithJsonSchema({"type": "array", "items": _TEXT_SCHEMA, "minItems": 1})]


def _request_schema(schema: dict[str, Any]) -> None:
    for name in ("text", "texts", "inputs"):
        schema["properties"][name].pop("default", None)  # absent, never null
    schema["oneOf"] = [{"required": [name]} for name in ("text", "texts", "inputs")]
    schema["not"] = {"required": ["truncation", "truncate"]}  # the older field or the newer, not both
    schema["examples"] = [
        {"text": "A gripping, beautifully shot film."},
        {"texts": ["Loved it.", "A tedious mess."], "raw_scores": False},
        {"inputs": ["Loved it.", "A tedious mess."]},
        {"text": "A long review, one window after another ...", "truncation": "chunk"},
    ]


class PredictRequest(BaseModel):
    """Exactly one of `text`, `texts` or `inputs` (the text-embeddings-inference shape)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_request_schema)

    text: Text | SkipJsonSchema[None] = Field(None, description="One text.")
    texts: TextList | SkipJsonSchema[None] = Field(None, description="Several texts, answered in order.")
    inputs: Text | TextList | SkipJsonSchema[None] = Field(None, description="TEI-compatible: one text or a list.")
    raw_scores: bool = Field(False, description="Return raw logits instead of calibrated probabilities.")
    truncation: Truncation | None = Field(
        None,
        description="Texts over the token limit: 'truncate' (cut and flag), 'reject' (413 input_too_long) or "
        "'chunk' (score overlapping windows, answer their length-weighted mean); default: server setting.",
    )
    truncate: bool | None = Field(
        None, description="Older form of `truncation`: true = 'truncate', false = 'reject' (default: server setting)."
    )
    timeout_s: float | None = Field(
        None, gt=0, le=3600, description="Deadline for this request in seconds (default: server setting)."
    )

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        reject_unknown_fields(data, cls.model_fields)
        if isinstance(data, dict) and "truncation" in data and "truncate" in data:
            raise field_error("give 'truncation' or the older 'truncate', not both")
        return data

    @field_validator("text", "texts", "inputs", mode="before")
    @classmethod
    def _shape(cls, value: Any, info: ValidationInfo) -> Any:
        # Runs only for keys actually sent: an explicit null is not "absent".
        name = info.field_name or "text"
        return check_texts(name, value, one=name != "texts", many=name != "text")

    @field_validator("text", "texts", "inputs")
    @classmethod
    def _encodable(cls, value: str | list[str] | None, info: ValidationInfo) -> str | list[str] | None:
        # JSON can carry lone surrogates ("\ud800"); they cannot be tokenized, so refuse them here.
        texts = [value] if isinstance(value, str) else value or []
        for i, text in enumerate(texts):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                where = info.field_name if isinstance(value, str) else f"{info.field_name}[{i}]"
                raise field_error(f"{where} is not valid Unicode ({exc.reason})") from None
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> PredictRequest:
        given = [name for name in ("text", "texts", "inputs") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of 'text', 'texts' or 'inputs' (got {given or 'none'})")
        return self

    def text_list(self) -> list[str]:
        field = "text" if self.text is not None else "texts" if self.texts is not None else "inputs"
        value = getattr(self, field)
        texts = [value] if isinstance(value, str) else list(value or [])
        if not texts:
            raise EmptyInput(f"{field} is an empty list; send at least one text")
        for i, text in enumerate(texts):
            if is_blank(text):
                where = field if isinstance(value, str) else f"{field}[{i}]"
                raise EmptyInput(f"{where} is empty (or only whitespace)")
        return texts

    def truncation_mode(self, default: Truncation) -> Truncation:
        if self.truncation is not None:
            return self.truncation
        if self.truncate is not None:
            return "truncate" if self.truncate else "reject"
        return default


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
    windows: int = Field(
        1, description="Model inputs the text was scored as: more than 1 only for a long text in chunk mode."
    )


class PredictResponse(BaseModel):
    model: ModelRef
    request_id: str
    predictions: list[Prediction]


_MAX_VERSION = 10**9
_ALIAS_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ReloadRequest(BaseModel):
    """POST /v1/models/reload: the version to serve next."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"version": "production"}, {"version": 4}]}
    )

    version: Annotated[int, Field(ge=1, le=_MAX_VERSION)] | Annotated[str, Field(pattern=_ALIAS_PATTERN.pattern)] = (
        Field(description="A version number, an alias (e.g. 'production') or 'latest'.")
    )

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        reject_unknown_fields(data, cls.model_fields)
        return data

    @field_validator("version", mode="before")
    @classmethod
    def _shape(cls, value: Any) -> Any:
        # Checked here in full so that no union member's complaint reaches the client; a JSON
        # boolean would otherwise pass as the integer 1.
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 4.0 is an integer in JSON Schema (and was one before this check)
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_VERSION:
            return value
        if isinstance(value, str) and _ALIAS_PATTERN.match(value):
            return value
        if isinstance(value, str):
            raise field_error(
                f"version {value[:40]!r} is not a version number or an alias (letters, digits, '.', '_' and '-', "
                "starting with a letter or digit, at most 128 characters)"
            )
        shown = f" ({value})" if isinstance(value, int | float) and not isinstance(value, bool) else ""
        raise field_error(
            f"version must be a version number from 1 to {_MAX_VERSION} or an alias such as 'production', "
            f"not {json_kind(value)}{shown}"
        )


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
    413: "Too many texts (`too_many_texts`), body too large (`body_too_large`), with truncation 'reject' "
    "a text over the token limit (`input_too_long`), with 'chunk' more windows than allowed (`too_many_windows`).",
    422: "Malformed JSON (`invalid_json`), invalid body (`invalid_request`) or empty input (`empty_input`).",
    429: "Queue full (`queue_full`); see the Retry-After header.",
    503: "Not ready (`not_ready`), shutting down (`draining`) or the batch failed (`inference_failed`).",
    504: "Deadline exceeded before the prediction was ready (`deadline_exceeded`).",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer with."""
    return {code: {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS[code]} for code in codes}
