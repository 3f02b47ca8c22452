"""The envelope every response is wrapped in: ``{"code", "message", "data"}``."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from shared.errors import Code

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    """TikMatrix's response envelope; ``code`` 0 is success."""

    code: int = Field(default=0, examples=[0])
    message: str = Field(default="success", examples=["success"])
    data: T | None = None


class ErrorEnvelope(BaseModel):
    code: int = Field(examples=[40001])
    message: str = Field(examples=["page_size: must be at most 100"])
    data: Any = None


def ok(data: T) -> Envelope[T]:
    return Envelope[T](code=0, message="success", data=data)


def error_response(code: Code, message: str, data: Any = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """The envelope for an error, with the HTTP status its code implies."""
    return JSONResponse(
        status_code=code.http_status,
        content={"code": int(code), "message": message, "data": data},
        headers=headers,
    )


# OpenAPI: the error envelopes each route may answer with.
def error_responses(*codes: Code) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    for code in (Code.UNAUTHORIZED, Code.PLAN_NO_API, *codes, Code.INTERNAL, Code.UNAVAILABLE):
        entry = out.setdefault(code.http_status, {"model": ErrorEnvelope, "description": ""})
        entry["description"] = (entry["description"] + f" {int(code)} {code.name.lower()};").strip()
    return out
