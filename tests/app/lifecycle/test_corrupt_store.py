"""A corrupt aliases.json while serving: the reload answers a typed error that names the file and the fix,
and the version being served keeps serving."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

ADMIN = {"Authorization": "Bearer admin-key"}


def test_reload_to_an_alias_in_a_corrupt_aliases_file_is_a_typed_503(
    swap_store: Path, make_client: Callable[..., TestClient]
) -> None:
    client = make_client(models_dir=swap_store, version="1", admin_api_key="admin-key")
    aliases = swap_store / "sentiment" / "aliases.json"
    aliases.write_text("{not json")
    response = client.post("/v1/models/reload", json={"version": "production"}, headers=ADMIN)
    assert response.status_code == 503, response.text
    body: dict[str, Any] = response.json()
    assert body["error_type"] == "store_corrupt"
    assert str(aliases) in body["error"] and "is not readable JSON" in body["error"]
    assert "sentiment-models --models-dir" in body["error"] and "still serving version 1" in body["error"]
    assert client.get("/health").status_code == 200
    assert client.post("/predict", json={"text": "still here"}).json()["model"]["version"] == 1
    assert client.post("/v1/models/reload", json={"version": 2}, headers=ADMIN).json()["outcome"] == "success"
    assert 'sentiment_model_swaps_total{outcome="store_corrupt"} 1.0' in client.get("/metrics").text
