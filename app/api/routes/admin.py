"""POST /v1/models/reload: move to another model version without dropping a request (app/swap.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.api.deps import AdminKeyDep
from app.api.schemas import ErrorResponse, ReloadRequest, ReloadResponse, json_response
from app.lifecycle.swap import ModelSwapper

router = APIRouter(tags=["models"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        401: "Admin key missing or wrong (`unauthorized`).",
        403: "No admin key configured: the endpoint is disabled (`admin_disabled`).",
        404: "No such version or alias (`model_not_found`).",
        409: "Another swap is in progress (`swap_in_progress`).",
        422: "Invalid body (`invalid_request`, `invalid_json`) or the version failed verification, loading or "
        "warm-up (`model_invalid`); the active version keeps serving.",
        503: "Not ready or draining (`not_ready`, `draining`), the version would not fit in memory beside "
        "the active one (`insufficient_memory`), or a store file such as aliases.json is unreadable "
        "(`store_corrupt`: the message names the file and the fix).",
    }.items()
}


@router.post(
    "/v1/models/reload",
    response_model=ReloadResponse,
    responses=_ERRORS,
    dependencies=[AdminKeyDep],
    summary="Swap to another model version (zero downtime)",
)
async def reload(payload: ReloadRequest, request: Request) -> Response:
    swapper: ModelSwapper = request.app.state.swapper
    return json_response(await swapper.swap(payload.version, trigger="admin"))
