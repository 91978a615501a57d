"""Bearer-key checks, in one place: the FastAPI dependencies, the /predict fast path and load shedding use them."""

from __future__ import annotations

import secrets

from pydantic import SecretStr

from app.errors import Unauthorized


def bearer_token(authorization: str | None) -> str | None:
    """The credentials of an `Authorization: Bearer <token>` header value, None for any other scheme."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def key_matches(token: str | None, key: SecretStr) -> bool:
    # Constant time: the comparison must not tell an attacker how much of a guess was right.
    return token is not None and secrets.compare_digest(token.encode(), key.get_secret_value().encode())


def check_api_key(key: SecretStr | None, token: str | None, what: str = "API key") -> None:
    """Nothing when no key is configured or the token matches; Unauthorized (401) otherwise."""
    if key is None:
        return
    if token is None:
        raise Unauthorized(f"missing {what}: send 'Authorization: Bearer <key>'")
    if not key_matches(token, key):
        raise Unauthorized(f"invalid {what}")
