"""The pages without a browser: offline assets, strict CSP headers, root_path, the wheel ships them.

tests/app/ui/test_browser.py renders them in Chromium; these checks are cheap enough for every run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.router import ROUTE_PATHS
from app.config import Settings
from app.lifecycle.service import load_configured
from app.main import create_app
from app.ui.csp import sha256_source
from tests.helpers.app import TEST_SETTINGS, wait_ready

REPO = Path(__file__).resolve().parents[3]
PAGES = ("/", "/docs", "/redoc")
_URL = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|url: '([^']+)'""")


@pytest.fixture(scope="module")
def app_settings(shared_models_dir: Path) -> Settings:
    return Settings(models_dir=shared_models_dir, **TEST_SETTINGS)


@pytest.fixture(scope="module")
def client(app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings, load_configured(app_settings))) as test_client:
        wait_ready(test_client)
        yield test_client


def urls(page: str) -> list[str]:
    return [a or b for a, b in _URL.findall(page)]


@pytest.mark.parametrize("path", PAGES)
def test_pages_use_only_this_origin_under_a_strict_policy(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "base-uri 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    page = response.text
    assert "http://" not in page and "https://" not in page and "//cdn" not in page  # nothing off this host
    found = urls(page)
    assert found, page
    for url in found:
        assert url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url


def test_inline_code_is_allowed_by_its_exact_hash(client: TestClient) -> None:
    swagger = client.get("/docs")
    (script,) = re.findall(r"<script>(.*?)</script>", swagger.text, flags=re.DOTALL)
    assert f"script-src 'self' {sha256_source(script)};" in swagger.headers["content-security-policy"]
    redoc = client.get("/redoc")
    (style,) = re.findall(r"<style>(.*?)</style>", redoc.text, flags=re.DOTALL)
    assert sha256_source(style) in redoc.headers["content-security-policy"]
    assert "<script>" not in redoc.text and "<style>" not in client.get("/").text


def test_the_assets_and_their_licences_are_served(client: TestClient) -> None:
    for path in (
        "/static/swagger/swagger-ui-bundle.js",
        "/static/swagger/LICENSE",
        "/static/redoc/redoc.standalone.js",
        "/static/redoc/redoc.standalone.js.LICENSE.txt",
        "/static/fastapi/LICENSE",
        "/redoc/logo-mini.svg",
        "/static/ui/playground.js",
        "/static/ui/playground.css",
    ):
        assert client.get(path).status_code == 200, path
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/png"
    assert "Apache License" in client.get("/static/swagger/LICENSE").text
    assert "MIT" in client.get("/static/fastapi/LICENSE").text


def test_the_openapi_schema_lists_only_the_api(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == ROUTE_PATHS  # the API routes, none of the pages
    assert schema["openapi"].startswith("3.1")


def test_pages_follow_the_root_path(app_settings: Settings) -> None:
    with TestClient(create_app(app_settings, load_configured(app_settings)), root_path="/sentiment") as prefixed:
        wait_ready(prefixed)
        for path in PAGES:
            page = prefixed.get(path).text
            assert all(url.startswith("/sentiment/") for url in urls(page)), urls(page)
        assert 'data-root="/sentiment"' in prefixed.get("/").text
        assert "url: '/sentiment/openapi.json'" in prefixed.get("/docs").text


def test_the_wheel_ships_the_playground(tmp_path: Path) -> None:
    """The images install the project as a wheel: the static files must be package data."""
    src = tmp_path / "src"  # a copy: building in the checkout would leave build/ and *.egg-info there
    for name in ("store", "inference", "app", "training"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=src,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("sentiment_service-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for static in sorted((REPO / "app" / "ui" / "static").iterdir()):
        assert f"app/ui/static/{static.name}" in names
