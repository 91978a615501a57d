"""/v1/models/shadow: score live traffic with a candidate version beside the active one (app/lifecycle/shadow.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.api.deps import AdminKeyDep, ApiKeyDep, ServiceDep
from app.api.quality_schemas import ShadowRequest, ShadowResponse
from app.api.schemas import ErrorResponse, json_response
from app.lifecycle.shadow import ShadowManager

router = APIRouter(tags=["models"])


def _errors(codes: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse, "description": text} for code, text in codes.items()}


_START_ERRORS = _errors(
    {
        401: "Admin key missing or wrong (`unauthorized`).",
        403: "No admin key configured: the endpoint is disabled (`admin_disabled`).",
        404: "No such version or alias (`model_not_found`).",
        409: "The version is the active one (`shadow_conflict`), or a swap or shadow load is running "
        "(`swap_in_progress`).",
        422: "Invalid body (`invalid_request`, `invalid_json`); the version failed verification, loading or warm-up, "
        "or has other labels (`model_invalid`); or failed its canary (`canary_failed`).",
        503: "Not ready or draining (`not_ready`, `draining`), or it would not fit in memory (`insufficient_memory`).",
    }
)


def _manager(request: Request) -> ShadowManager:
    return request.app.state.shadow


@router.post(
    "/v1/models/shadow",
    response_model=ShadowResponse,
    responses=_START_ERRORS,
    dependencies=[AdminKeyDep],
    summary="Score a share of live traffic with a candidate version (replaces a running shadow)",
)
async def start_shadow(payload: ShadowRequest, request: Request) -> Response:
    return json_response(await _manager(request).start(payload.version, payload.share))


@router.delete(
    "/v1/models/shadow",
    response_model=ShadowResponse,
    responses=_errors(
        {
            401: "Admin key missing or wrong (`unauthorized`).",
            403: "No admin key configured (`admin_disabled`).",
            404: "No shadow is running (`shadow_not_running`).",
        }
    ),
    dependencies=[AdminKeyDep],
    summary="Stop shadow scoring and release the candidate",
)
async def stop_shadow(request: Request) -> Response:
    return json_response(await _manager(request).stop())


@router.get(
    "/v1/models/shadow",
    response_model=ShadowResponse,
    responses=_errors({401: "API key configured and missing or wrong (`unauthorized`)."}),
    dependencies=[ApiKeyDep],
    summary="The shadow candidate and how often it agrees",
)
async def shadow_status(service: ServiceDep) -> Response:
    scorer = service.quality.shadow
    if scorer is None:
        return json_response({"outcome": "none", "shadow": None})
    return json_response({"outcome": "running", "shadow": scorer.describe()})
