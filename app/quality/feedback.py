"""POST /feedback, behind the route: check every item, then record all of them or none.

An item names an answer by the request id /predict returned (and `index` for a request of several
texts) and gives the correct label. Every item is checked before anything changes: an unknown or expired
id, an index the request did not have, a label the answering version does not know, a text that differs
from the one answered, or feedback already given for that answer refuses the whole call with a typed 4xx
and records nothing. Then the items are stored durably (app/quality/feedback_log.py; the call answers
after the fsync), and only then counted: live accuracy and confusion per version, and, for inputs the
shadow candidate also scored, the accuracy of both (app/quality/metrics.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.errors import (
    DuplicateFeedback,
    FeedbackNotStored,
    FeedbackStoreFull,
    InvalidRequest,
    PredictionNotFound,
    ServiceError,
    TextMismatch,
    UnknownLabel,
)
from app.quality.feedback_log import FeedbackLog
from app.quality.feedback_log import FeedbackStoreFull as LogFull
from app.quality.metrics import QualityMetrics
from app.quality.recent import Answered, RecentAnswers
from store.feedback_format import feedback_record, record_line


@dataclass(frozen=True)
class FeedbackItem:
    request_id: str
    label: str
    index: int | None = None
    text: str | None = None


@dataclass(frozen=True)
class _Resolved:
    item: FeedbackItem
    answered: Answered
    index: int
    text: str | None
    text_source: str | None


class FeedbackBook:
    def __init__(self, recent: RecentAnswers, metrics: QualityMetrics, feedback_log: FeedbackLog | None) -> None:
        self.recent = recent
        self.metrics = metrics
        self.log = feedback_log

    async def submit(self, items: Sequence[FeedbackItem]) -> dict[str, Any]:
        try:
            resolved = self._resolve_all(items)
            for r in resolved:  # reserved before the write: a concurrent call sees them as given
                r.answered.feedback[r.index] = True
            try:
                stored = await self._store(resolved)
            except BaseException:
                for r in resolved:
                    r.answered.feedback[r.index] = False
                raise
        except ServiceError as exc:
            self.metrics.feedback_rejected.labels(reason=exc.error_type).inc()
            raise
        answers = [self._count(r) for r in resolved]
        return {"accepted": len(answers), "stored": stored, "feedback": answers}

    # ---- checks (nothing changes until every item passed) ------------------------------------
    def _resolve_all(self, items: Sequence[FeedbackItem]) -> list[_Resolved]:
        seen: set[tuple[str, int]] = set()
        resolved = []
        for position, item in enumerate(items):
            where = f"item {position}: " if len(items) > 1 else ""
            r = self._resolve(item, where)
            key = (item.request_id, r.index)
            if key in seen:
                raise DuplicateFeedback(
                    f"{where}feedback for request {item.request_id!r} index {r.index} appears twice"
                )
            seen.add(key)
            resolved.append(r)
        return resolved

    def _resolve(self, item: FeedbackItem, where: str) -> _Resolved:
        answered = self.recent.get(item.request_id)
        if answered is None:
            raise PredictionNotFound(
                f"{where}no recent prediction has request id {item.request_id!r}: it is unknown, or older than "
                "the feedback window (SENTIMENT_FEEDBACK_MAX_AGE_S / SENTIMENT_FEEDBACK_RECORDS)"
            )
        index = item.index
        if index is None:
            if answered.size != 1:
                raise InvalidRequest(f"{where}request {item.request_id!r} answered {answered.size} texts: give 'index'")
            index = 0
        if not 0 <= index < answered.size:
            raise PredictionNotFound(
                f"{where}request {item.request_id!r} answered {answered.size} texts; index {index} names none"
            )
        if item.label not in answered.labels:
            raise UnknownLabel(
                f"{where}label {item.label!r} is not a label of version {answered.version} ({list(answered.labels)})"
            )
        if answered.feedback[index]:
            raise DuplicateFeedback(f"{where}feedback for request {item.request_id!r} index {index} was already given")
        served = answered.texts[index] if answered.texts is not None else None
        if item.text is not None and served is not None and item.text != served:
            raise TextMismatch(f"{where}the text differs from the one request {item.request_id!r} answered")
        text = item.text if item.text is not None else served
        source = None if text is None else ("client" if item.text is not None else "service")
        return _Resolved(item, answered, index, text, source)

    # ---- storing and counting ------------------------------------------------------------------
    async def _store(self, resolved: list[_Resolved]) -> bool:
        if self.log is None:
            return False
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        data = b"".join(record_line(self._record(r, now)) for r in resolved)
        try:
            await asyncio.to_thread(self.log.append, data)
        # The error handler logs the one line (a warning, with the reason); the metric feeds the alert.
        except LogFull as exc:
            self.metrics.feedback_write_errors.labels(reason="full").inc()
            raise FeedbackStoreFull(f"{exc}; nothing was recorded") from exc
        except OSError as exc:
            self.metrics.feedback_write_errors.labels(reason="io").inc()
            raise FeedbackNotStored(f"feedback could not be written ({exc.strerror or exc}); nothing recorded") from exc
        self.metrics.feedback_stored.inc(len(resolved))
        return True

    @staticmethod
    def _record(r: _Resolved, received_at: str) -> dict[str, Any]:
        a = r.answered
        row = a.probs[r.index].tolist()
        return feedback_record(
            request_id=r.item.request_id,
            index=r.index,
            label=r.item.label,
            predicted=a.labels[a.predicted[r.index]],
            probabilities={label: round(p, 6) for label, p in zip(a.labels, row, strict=True)},
            model_name=a.model_name,
            version=a.version,
            text=r.text,
            text_source=r.text_source,
            received_at=received_at,
        )

    def _count(self, r: _Resolved) -> dict[str, Any]:
        a, m = r.answered, self.metrics
        predicted = a.labels[a.predicted[r.index]]
        correct = predicted == r.item.label
        version = str(a.version)
        m.feedback.labels(version=version, outcome="correct" if correct else "incorrect").inc()
        m.confusion.labels(version=version, predicted=predicted, actual=r.item.label).inc()
        if a.shadow_predicted is not None and a.shadow_version is not None and a.shadow_predicted[r.index] >= 0:
            candidate = str(a.shadow_version)
            shadow_correct = a.labels[a.shadow_predicted[r.index]] == r.item.label
            for model, ok in (("candidate", shadow_correct), ("active", correct)):
                m.shadow_feedback.labels(
                    candidate=candidate, model=model, outcome="correct" if ok else "incorrect"
                ).inc()
        return {
            "request_id": r.item.request_id,
            "index": r.index,
            "model": {"name": a.model_name, "version": a.version},
            "predicted": predicted,
            "label": r.item.label,
            "correct": correct,
        }
