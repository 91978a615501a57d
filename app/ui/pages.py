"""The playground (`/`), Swagger UI (`/docs`) and ReDoc (`/redoc`), from files on this host only.

FastAPI's own /docs and /redoc load their JavaScript and CSS from a public CDN: blank pages on an
air-gapped host. The assets here come from the `fastapi-standalone-docs` wheel (Swagger UI 5.x and
ReDoc 2.5.x with their licence files, served beside them under /static/); its `StandaloneDocs(app)`
is not used because it patches FastAPI module-wide, for every app in the process. The HTML is
FastAPI's own (`get_swagger_ui_html`, `get_redoc_html`), so the pages and the OpenAPI schema are
what FastAPI would serve, only from this origin and under a strict CSP (app/ui/csp.py). Every URL
carries the request's root_path, so the pages work behind a proxy prefix too.
"""

from __future__ import annotations

import functools
import html
import importlib.util
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse, HTMLResponse, Response

from app.ui import csp

UI_STATIC = Path(__file__).parent / "static"
STATIC = "/static"  # every asset folder is mounted below this prefix
_DOCS_PACKAGE = "fastapi_standalone_docs"
_SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

router = APIRouter(include_in_schema=False)


def docs_assets() -> Path:
    """The wheel's static folder (swagger/, redoc/, fastapi/), found without importing the package."""
    spec = importlib.util.find_spec(_DOCS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the API docs need the {_DOCS_PACKAGE} package: pip install 'fastapi-standalone-docs==0.3.0' "
            "(it is part of the project's serve extra)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def register_pages(app: FastAPI) -> None:
    """Mount the asset folders and add the page routes (none of them in the OpenAPI schema)."""
    assets = docs_assets()
    for name in ("swagger", "redoc", "fastapi"):
        app.mount(f"{STATIC}/{name}", StaticFiles(directory=assets / name), name=f"{name}-assets")
    app.mount(f"{STATIC}/ui", StaticFiles(directory=UI_STATIC), name="ui-assets")
    app.state.docs_assets = assets
    app.include_router(router)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _page(body: str, policy: str) -> HTMLResponse:
    return HTMLResponse(body, headers={"Content-Security-Policy": policy, **_SECURITY_HEADERS})


@functools.cache
def _playground_template() -> str:
    return (UI_STATIC / "index.html").read_text(encoding="utf-8")


@router.get("/")
async def playground(request: Request) -> HTMLResponse:
    page = _playground_template().replace("{{root}}", html.escape(_root(request), quote=True))
    return _page(page, csp.PLAYGROUND)


@functools.lru_cache(maxsize=16)
def _swagger(root: str, title: str, openapi_url: str) -> tuple[str, str]:
    page = get_swagger_ui_html(
        openapi_url=root + openapi_url,
        title=f"{title} - Swagger UI",
        swagger_js_url=f"{root}{STATIC}/swagger/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{STATIC}/swagger/swagger-ui.css",
        swagger_favicon_url=f"{root}{STATIC}/fastapi/favicon.png",
        oauth2_redirect_url=None,  # no OAuth2 flows: no redirect page to serve
    ).body.decode()
    return page, csp.swagger_policy(page)


@functools.lru_cache(maxsize=16)
def _redoc(root: str, title: str, openapi_url: str) -> tuple[str, str]:
    page = get_redoc_html(
        openapi_url=root + openapi_url,
        title=f"{title} - ReDoc",
        redoc_js_url=f"{root}{STATIC}/redoc/redoc.standalone.js",
        redoc_favicon_url=f"{root}{STATIC}/fastapi/favicon.png",
        with_google_fonts=False,  # fonts.googleapis.com: not reachable, and not ours to call
    ).body.decode()
    return page, csp.redoc_policy(page)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    app = request.app
    return _page(*_swagger(_root(request), app.title, app.openapi_url or "/openapi.json"))


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    app = request.app
    return _page(*_redoc(_root(request), app.title, app.openapi_url or "/openapi.json"))


@router.get("/redoc/logo-mini.svg")
async def redoc_logo(request: Request) -> Response:
    # The wheel's ReDoc asks for its logo at location.pathname + "/logo-mini.svg" (not a CDN).
    return FileResponse(request.app.state.docs_assets / "redoc" / "logo-mini.svg", media_type="image/svg+xml")


@router.get("/favicon.ico")
async def favicon(request: Request) -> Response:
    # Browsers ask for /favicon.ico on every page; a PNG under that name is what they all accept.
    return FileResponse(request.app.state.docs_assets / "fastapi" / "favicon.png", media_type="image/png")
