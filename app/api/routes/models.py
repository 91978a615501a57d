"""GET /v1/models: what is being served, with its manifest summary."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from app.api.deps import ApiKeyDep, ServiceDep
from app.api.schemas import ModelsResponse, error_responses, json_response
from app.errors import NotReady
from app.lifecycle.registry import layout
from app.lifecycle.service import State

router = APIRouter(tags=["models"])


@router.get(
    "/v1/models",
    response_model=ModelsResponse,
    responses=error_responses(401, 503),
    dependencies=[ApiKeyDep],
    summary="The served model",
)
async def models(service: ServiceDep) -> Response:
    loaded = service.loaded
    if loaded is None or service.state not in (State.READY, State.DRAINING):
        raise NotReady(f"no model is being served yet (state: {service.state})")
    src = loaded.source
    manifest = src.manifest
    choice = loaded.precision
    info = {
        "name": src.name,
        "version": src.version,
        "labels": src.labels,
        "temperature": src.temperature,
        "max_length": loaded.max_length,
        "device": loaded.device,
        "dtype": loaded.dtype,
        "created_at": manifest.get("created_at"),
        "base_model": manifest.get("base_model"),
        "dataset": manifest.get("dataset"),
        "metrics": manifest.get("metrics"),
        # The records the precision was chosen by: this host's sidecar over the manifest, each with its source.
        "precision_parity": (choice.records or None) if choice else manifest.get("precision_parity"),
        "precision": choice.describe() if choice else None,
        "layout": layout(loaded),
        "packing": loaded.execution.describe() if loaded.execution else None,
        # Canary verdict, prediction statistics and drift, feedback state (docs/operations.md, model quality).
        "quality": service.quality.describe(src.version),
        "shadow": service.quality.shadow.describe() if service.quality.shadow is not None else None,
    }
    return json_response({"models": [info]})
