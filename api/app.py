"""The gateway: FastAPI app factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CollectorRegistry

from api.accounts.endpoints import router as accounts_router
from api.dashboard.endpoints import router as dashboard_router
from api.devices.endpoints import router as devices_router
from api.errors import install_error_handlers
from api.events.endpoints import router as events_router
from api.health.endpoints import router as health_router
from api.license.endpoints import router as license_router
from api.metrics.endpoints import FarmCollector, RequestMetrics, request_histogram
from api.metrics.endpoints import router as metrics_router
from api.middleware import BodySizeLimit
from api.reads import close_pools
from api.tasks.endpoints import router as tasks_router
from shared.settings import Settings, get_settings

API_PREFIX = "/api/v1"

DESCRIPTION = """
phonefleet serves TikMatrix's local task API: same port (50809), paths, parameters, envelope and codes,
so a client written for TikMatrix works unchanged.

Every response is the envelope `{"code": int, "message": str, "data": ...}`; `code` 0 is success and the
HTTP status mirrors the code (40001 → 400, 40401 → 404, 50301 → 503...).

Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>` (`phonefleet keys create --plan pro`).
"""


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    # Everything built so far (the app, its routes and models: ~140,000 objects) lives as long as the
    # process: keep it out of the cyclic garbage collector, whose full collections otherwise walk it
    # all (tens of ms, a pause in whichever request is running: the api's p99).
    gc.freeze()
    yield
    await close_pools()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the api. Importing this module starts nothing; migrations are a separate step."""
    settings = settings or get_settings()
    app = FastAPI(
        title="phonefleet",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in (tasks_router, accounts_router, devices_router, license_router, events_router):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(dashboard_router)
    app.include_router(health_router)
    app.include_router(metrics_router)
    registry = CollectorRegistry()
    registry.register(FarmCollector())
    app.state.metrics_registry = registry
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, seconds=request_histogram(registry))
    return app


def __getattr__(name: str) -> Any:
    # `uvicorn api.app:app` works without building an app at import time for everyone else.
    if name == "app":
        return create_app()
    raise AttributeError(name)
