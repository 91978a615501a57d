"""The FastAPI application (`uvicorn app.main:app`, or `sentiment-serve` which preloads the model)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware import Middleware

from app import __version__
from app.api.error_handlers import register_error_handlers
from app.api.fast_path import PredictFastPath
from app.api.log_limit import RateLimitedLog
from app.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from app.api.openapi import document_limits
from app.api.router import ROUTE_PATHS, api_router
from app.api.shedding import LoadShedMiddleware
from app.config import Settings
from app.lifecycle.gc_control import GcPauses
from app.lifecycle.heap_trim import HeapTrimmer
from app.lifecycle.service import Service
from app.lifecycle.shadow import ShadowManager
from app.lifecycle.swap import ModelSwapper
from app.lifecycle.watcher import AliasWatcher
from app.metrics import Metrics
from app.ui.pages import register_pages
from inference.loader import LoadedModel


def create_app(settings: Settings | None = None, loaded: LoadedModel | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()
    service = Service(settings, metrics, loaded)
    swapper = ModelSwapper(service)
    shadow = ShadowManager(service, swapper)
    # 429s from the route and from the load-shedding fast path share one budget of a line per second.
    overload_log = RateLimitedLog(logging.getLogger("app.errors"), "queue_full refusals")

    gc_pauses = GcPauses(metrics.gc_pause)
    trimmer = HeapTrimmer(
        lambda: metrics.requests_done,
        lambda: service.batcher is None or service.batcher.admitted > 0,
        settings.heap_trim_interval_s,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        gc_pauses.install()
        service.launch()
        trimmer.start()
        watcher = None
        if settings.watch_alias is not None:
            watcher = AliasWatcher(service, swapper, settings.watch_alias, settings.watch_interval_s)
            watcher.start()
        try:
            yield
        finally:
            if watcher is not None:
                await watcher.stop()
            await trimmer.stop()
            await shadow.stop(quiet=True)
            await service.stop()
            overload_log.flush()
            gc_pauses.remove()

    app = FastAPI(
        title="Sentiment service",
        version=__version__,
        description="Sentiment classification with dynamic micro-batching. Errors: docs/api.md.",
        lifespan=lifespan,
        # FastAPI's OpenTelemetry hooks look the providers up on every request (~10% of the event loop's
        # CPU at load, docs/performance.md); the service exports its own Prometheus metrics instead.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # FastAPI's own pages load their assets from a CDN; app/ui/pages.py serves them from this host.
        docs_url=None,
        redoc_url=None,
        middleware=[
            Middleware(RequestContextMiddleware, metrics=metrics, known_paths=ROUTE_PATHS),
            Middleware(LoadShedMiddleware, service=service, metrics=metrics, overload_log=overload_log),
            Middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes, metrics=metrics),
            Middleware(PredictFastPath, service=service, metrics=metrics, overload_log=overload_log),
        ],
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.service = service
    app.state.swapper = swapper
    app.state.shadow = shadow
    register_error_handlers(app, overload_log)
    app.include_router(api_router)
    register_pages(app)
    document_limits(app, settings)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn app.main:app` gets an app built from the environment on first access; importing
    # create_app (as sentiment-serve does) reads no settings and builds nothing.
    if name == "app":
        globals()["app"] = built = create_app()
        return built
    raise AttributeError(name)
