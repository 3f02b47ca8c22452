"""The one place that turns exceptions into envelopes. Expected errors carry their code; anything
else becomes 50001 with an error id in the body and the traceback only in the server's log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
import psycopg_pool
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.envelope import error_response
from shared.errors import Code, PhoneFleetError

log = structlog.get_logger(__name__)

UNAVAILABLE_HINT = "a backing service is unreachable ({service}); the request changed nothing, retry shortly"


def field_name(loc: Sequence[int | str]) -> str:
    """``("body", "serials", 2)`` → ``serials[2]``; ``("query", "page_size")`` → ``page_size``."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name


def describe_error(error: dict[str, Any]) -> str:
    """A pydantic error in words a client can act on."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    simple = {
        "missing": "required",
        "json_invalid": "the body is not valid JSON",
        "model_attributes_type": "must be a JSON object",
        "dict_type": "must be a JSON object",
        "model_type": "must be a JSON object",
        "list_type": "must be an array",
        "string_type": "must be a string",
        "int_type": "must be an integer",
        "int_parsing": "must be an integer",
        "int_from_float": "must be an integer",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "extra_forbidden": "is not a known field",
    }
    if kind in simple:
        return simple[kind]
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} items"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return (
            "must not be empty"
            if ctx.get("min_length") == 1
            else f"must be at least {ctx.get('min_length')} characters"
        )
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        return f"has an invalid format (expected {ctx.get('pattern')})"
    if kind == "value_error":
        return str(ctx.get("error", error.get("msg", "invalid value")))
    return str(error.get("msg", "invalid value")).lower()


def validation_response(errors: Sequence[Any]) -> JSONResponse:
    """40001 naming the first bad field (40002 when it is ``script_name`` that is missing)."""
    errors = list(errors)
    for error in errors:
        loc = tuple(error.get("loc", ()))
        missing = error.get("type") in ("missing", "string_too_short") or (
            error.get("type") == "string_type" and error.get("input") is None
        )
        if loc[-1:] == ("script_name",) and missing:
            return error_response(Code.SCRIPT_NAME_MISSING, "script_name: required")
    # Prefer a structural problem with the body itself over a problem with one of its fields.
    errors.sort(key=lambda e: 0 if tuple(e.get("loc", ())) == ("body",) else 1)
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    name = field_name(first.get("loc", ())) or "body"
    message = f"{name}: {describe_error(first)}"
    return error_response(Code.INVALID_PARAMS, message, {"field": name})


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that render every error as the envelope."""

    @app.exception_handler(PhoneFleetError)
    async def _phonefleet_error(_: Request, exc: PhoneFleetError) -> JSONResponse:
        return error_response(exc.code, exc.message, exc.data)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(Code.NOT_FOUND, f"no endpoint {request.method} {request.url.path}")
        if exc.status_code == 405:
            return error_response(Code.INVALID_PARAMS, f"method {request.method} is not allowed on {request.url.path}")
        if exc.status_code == 400:
            return error_response(Code.INVALID_PARAMS, str(exc.detail))
        return error_response(Code.INTERNAL, str(exc.detail))

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeoutError)
    async def _database_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database_unavailable", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return error_response(Code.UNAVAILABLE, UNAVAILABLE_HINT.format(service="database"))

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg_pool.PoolTimeout)
    async def _database_down_raw(_: Request, exc: Exception) -> JSONResponse:
        # The hot paths send SQL through the session's psycopg connection: its errors are not wrapped.
        log.warning("database_unavailable", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return error_response(Code.UNAVAILABLE, UNAVAILABLE_HINT.format(service="database"))

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            log.warning("database_unavailable", error=type(exc.orig).__name__)
            return error_response(Code.UNAVAILABLE, UNAVAILABLE_HINT.format(service="database"))
        return _internal(request, exc)

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def _broker_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("broker_unavailable", error=str(exc))
        return error_response(Code.UNAVAILABLE, UNAVAILABLE_HINT.format(service="broker"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal(request, exc)


def _internal(request: Request, exc: Exception) -> JSONResponse:
    error_id = uuid.uuid4().hex[:12]
    log.error("internal_error", error_id=error_id, path=request.url.path, method=request.method, exc_info=exc)
    return error_response(
        Code.INTERNAL,
        f"internal error (id {error_id}); the server log has the details",
        {"error_id": error_id},
    )
