"""The feedback record: one JSON line per correction, written by the service, read by the trainer (stdlib only).

The service (app/quality/feedback_log.py) appends these to `feedback-*.jsonl` files under its
feedback directory; `sentiment-train --data 'feedback/*.jsonl'` reads them directly (training/sources.py).
Both sides use this module, so the writer and the reader cannot disagree about the format:

    {"format": "sentiment-feedback/1", "label": "negative", "text": "...", "text_source": "client",
     "request_id": "...", "index": 0, "predicted": "positive", "probabilities": {"negative": 0.2, ...},
     "model": {"name": "sentiment", "version": 3}, "received_at": "2026-12-01T10:00:00+00:00"}

`label` is the correct label given by the client. `text` is present only when the client sent it or
the service kept it (feedback_store_text); a record without text still counts towards the live
accuracy but cannot train a model, so the trainer skips it (and says how many it skipped).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from store.jsonl import parse_object

FORMAT = "sentiment-feedback/1"


def feedback_record(
    *,
    request_id: str,
    index: int,
    label: str,
    predicted: str,
    probabilities: dict[str, float],
    model_name: str,
    version: int,
    text: str | None,
    text_source: str | None,
    received_at: str,
) -> dict[str, Any]:
    record: dict[str, Any] = {"format": FORMAT, "label": label}
    if text is not None:
        record |= {"text": text, "text_source": text_source}
    return record | {
        "request_id": request_id,
        "index": index,
        "predicted": predicted,
        "probabilities": probabilities,
        "model": {"name": model_name, "version": version},
        "received_at": received_at,
    }


def record_line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")


def is_feedback_line(line: str) -> bool:
    """Whether a JSONL line is a feedback record (how the trainer tells feedback files from other JSONL)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(row, dict) and row.get("format") == FORMAT


@dataclass(frozen=True)
class ParsedFeedback:
    label: str
    text: str | None  # None: the record carries no text (cannot train)


def parse_feedback_line(line: str) -> ParsedFeedback | str:
    """The label and text of one record, or why the line is not a usable feedback record."""
    row = parse_object(line)
    if isinstance(row, str):
        return row
    if row.get("format") != FORMAT:
        return f"not a feedback record (format {row.get('format')!r}, expected {FORMAT!r})"
    label = row.get("label")
    if not isinstance(label, str) or not label.strip():
        return f"'label' must be a non-empty string, got {label!r}"
    text = row.get("text")
    if text is not None and (not isinstance(text, str) or not text.strip()):
        return "'text' must be a non-empty string when present"
    return ParsedFeedback(label.strip(), text.strip() if text is not None else None)
