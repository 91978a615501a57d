"""OpenAPI details that depend on the running configuration."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from app.config import Settings


def document_limits(app: FastAPI, settings: Settings) -> None:
    """Publish the configured texts-per-request limit as maxItems (beyond it: 413 too_many_texts)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            props = schema["components"]["schemas"]["PredictRequest"]["properties"]
            for variant in (props["texts"], *props["inputs"]["anyOf"]):
                if variant.get("type") == "array":
                    variant["maxItems"] = settings.max_texts_per_request
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
