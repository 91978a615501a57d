"""Readiness (/health, /health/ready) and liveness (/health/live)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from app.api.deps import ServiceDep
from app.api.schemas import HealthResponse, LiveResponse, json_response
from app.lifecycle.registry import layout
from app.lifecycle.service import Service, State

router = APIRouter(tags=["health"])

_NOT_READY = {503: {"model": HealthResponse, "description": "Loading, warming up, draining or failed."}}


def _health(service: Service) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": str(service.state),
        "queue_depth": service.batcher.queued if service.batcher else 0,
    }
    if service.loaded is not None:
        src = service.loaded.source
        body |= {
            "model": {"name": src.name, "version": src.version},
            "device": service.loaded.device,
            "dtype": service.loaded.dtype,
            "layout": layout(service.loaded),
        }
    if service.error is not None:
        body["error"] = service.error
    return body


@router.get("/health", response_model=HealthResponse, responses=_NOT_READY, summary="Readiness")
@router.get("/health/ready", response_model=HealthResponse, responses=_NOT_READY, summary="Readiness (alias)")
async def ready(service: ServiceDep) -> Response:
    return json_response(_health(service), 200 if service.state is State.READY else 503)


@router.get("/health/live", response_model=LiveResponse, summary="Liveness")
async def live() -> Response:
    return json_response({"status": "alive"})
