"""Probes for orchestrators: ``/healthz`` (the process answers) and ``/readyz`` (it can do its job:
PostgreSQL and the broker answer). No key needed; they reveal nothing but up or down."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.envelope import error_response
from shared.broker import get_redis
from shared.db.engine import get_engine
from shared.errors import Code

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> JSONResponse:
    return JSONResponse({"code": 0, "message": "alive", "data": None})


@router.get("/readyz", summary="Readiness: database and broker reachable")
def readyz() -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        get_redis().ping()
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"unreachable: {type(exc).__name__}"
    if all(v == "ok" for v in checks.values()):
        return JSONResponse({"code": 0, "message": "ready", "data": checks})
    return error_response(Code.UNAVAILABLE, "not ready: " + ", ".join(f"{k} {v}" for k, v in checks.items()), checks)
