"""Request dependencies (FastAPI `Annotated` style).

All `async def`: FastAPI runs plain `def` dependencies in a thread pool, a costly hop per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.auth import check_api_key
from app.config import Settings
from app.errors import AdminDisabled
from app.lifecycle.service import Service

_bearer = HTTPBearer(auto_error=False, description="Needed only when the server has an API key configured.")


async def get_service(request: Request) -> Service:
    return request.app.state.service


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


ServiceDep = Annotated[Service, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def require_api_key(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    check_api_key(settings.api_key, credentials.credentials if credentials else None)


ApiKeyDep = Depends(require_api_key)


async def require_admin_key(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Admin routes are off unless a key exists: an open endpoint that swaps the model is never the default."""
    key = settings.admin_api_key or settings.api_key
    if key is None:
        raise AdminDisabled(
            "admin endpoints are disabled: set SENTIMENT_ADMIN_API_KEY (or SENTIMENT_API_KEY) to enable them"
        )
    check_api_key(key, credentials.credentials if credentials else None, what="admin key")


AdminKeyDep = Depends(require_admin_key)
