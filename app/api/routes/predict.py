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
from inference.scores import softmax
from inference.windows import combine_windows

router = APIRouter(tags=["predict"])


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=error_responses(401, 413, 422, 429, 503, 504),
    dependencies=[ApiKeyDep],
    summary="Classify one or more texts",
)
async def predict(payload: PredictRequest, request: Request, service: ServiceDep) -> Response:
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
    watcher = asyncio.ensure_future(_disconnect(request.receive))
    try:
        logits = await batcher.result(ticket, watcher)
    finally:
        watcher.cancel()
    # The version that ran this request's batches, not the one active now: a swap may have happened
    # since admission, and a request is pinned to the model that tokenized it (app/lifecycle/swap.py).
    source = ticket.model.loaded.source
    return json_response(
        {
            "model": {"name": source.name, "version": source.version},
            "request_id": request.state.request_id,
            "predictions": _predictions(logits, ticket, source.labels, source.temperature, payload.raw_scores),
        }
    )


def _predictions(
    logits: np.ndarray, ticket: Ticket, labels: list[str], temperature: float, raw: bool
) -> list[dict[str, Any]]:
    scores = logits.astype(np.float64) if raw else softmax(logits, temperature)
    windows = ticket.windows
    if windows is None:
        windows = [1] * len(scores)
    else:
        # A long text's windows become one answer: the length-weighted mean of their probabilities
        # (of their logits with raw_scores); inference/windows.py says why.
        scores = combine_windows(scores, ticket.lengths, windows)
    key = "logits" if raw else "probabilities"
    return [
        {"label": labels[k], "score": row[k], key: dict(zip(labels, row, strict=True)), "truncated": cut, "windows": w}
        for row, k, cut, w in zip(
            scores.tolist(), scores.argmax(axis=1).tolist(), ticket.truncated, windows, strict=True
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
