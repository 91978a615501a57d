"""POST /predict: admission, batching, and the answer in request order."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import Receive

from app.api.deps import ApiKeyDep, ServiceDep
from app.api.schemas import PredictRequest, PredictResponse, error_responses, json_response
from app.engine.tickets import Ticket
from app.errors import TooManyTexts
from app.lifecycle.service import Service
from inference.scores import softmax
from inference.windows import combine_windows, text_lengths

router = APIRouter(tags=["predict"])


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=error_responses(401, 413, 422, 429, 503, 504),
    dependencies=[ApiKeyDep],
    summary="Classify one or more texts",
)
async def predict(payload: PredictRequest, request: Request, service: ServiceDep) -> Response:
    # Served by app/api/fast_path.py, which answers POST /predict before FastAPI's routing; this route
    # documents the operation and answers when the app is mounted without that middleware.
    return json_response(await run_prediction(payload, service, request.state.request_id, request.receive))


async def run_prediction(
    payload: PredictRequest, service: Service, request_id: str, receive: Receive
) -> dict[str, Any]:
    """Limits, admission, batching and the answer in request order: the whole of /predict after validation."""
    settings = service.settings
    texts = payload.text_list()
    if len(texts) > settings.max_texts_per_request:
        raise TooManyTexts(f"{len(texts)} texts in one request; the limit is {settings.max_texts_per_request}")
    batcher = service.ready_batcher()
    timeout = payload.timeout_s or settings.request_timeout_s
    mode = payload.truncation_mode(settings.truncation)
    max_windows = settings.max_windows_per_request if mode == "chunk" else None
    ticket = await batcher.submit(
        texts, time.monotonic() + timeout, reject_truncated=mode == "reject", max_windows=max_windows
    )
    watcher = asyncio.ensure_future(_disconnect(receive))
    try:
        logits = await batcher.result(ticket, watcher)
    finally:
        watcher.cancel()
    # The version that ran this request's batches, not the one active now: a swap may have happened
    # since admission, and a request is pinned to the model that tokenized it (app/lifecycle/swap.py).
    source = ticket.model.loaded.source
    probs = softmax(logits, source.temperature)
    scores = logits.astype(np.float64) if payload.raw_scores else probs
    lengths, windows = ticket.lengths, ticket.windows
    if windows is not None:
        # A long text's windows become one answer: the length-weighted mean of their probabilities
        # (of their logits with raw_scores); inference/windows.py says why.
        probs = combine_windows(probs, lengths, windows)
        scores = combine_windows(scores, lengths, windows) if payload.raw_scores else probs
        lengths = text_lengths(lengths, windows)
    # Prediction metrics, drift window, the record feedback refers to, the shadow's offer (app/quality/monitor.py).
    service.quality.observe(request_id, source, probs, lengths, texts)
    return {
        "model": {"name": source.name, "version": source.version},
        "request_id": request_id,
        "predictions": _predictions(scores, ticket, source.labels, payload.raw_scores, windows),
    }


def _predictions(
    scores: np.ndarray, ticket: Ticket, labels: list[str], raw: bool, windows: list[int] | None
) -> list[dict[str, Any]]:
    key = "logits" if raw else "probabilities"
    counts = windows if windows is not None else [1] * len(scores)
    return [
        {"label": labels[k], "score": row[k], key: dict(zip(labels, row, strict=True)), "truncated": cut, "windows": w}
        for row, k, cut, w in zip(
            scores.tolist(), scores.argmax(axis=1).tolist(), ticket.truncated, counts, strict=True
        )
    ]


async def _disconnect(receive: Receive) -> None:
    """Returns when the client goes away (the body is already read, so receive() only reports that)."""
    try:
        for _ in range(64):
            if (await receive())["type"] == "http.disconnect":
                return
    except Exception:  # a broken channel means nobody will read the answer either
        return
    await asyncio.Event().wait()  # a server that keeps sending body messages: stop watching
