"""phonefleet's error codes and the one exception hierarchy that carries them.

Every expected failure is a :class:`PhoneFleetError`; the api renders any of them as the envelope
``{"code", "message", "data": null}`` with the HTTP status the code implies. Nothing else maps
errors to codes.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class Code(IntEnum):
    SUCCESS = 0
    INVALID_PARAMS = 40001
    SCRIPT_NAME_MISSING = 40002
    SCRIPT_NOT_SUPPORTED = 40003
    ACCOUNT_NOT_FOUND = 40004
    UNAUTHORIZED = 40101
    PLAN_NO_API = 40301
    DEVICE_LIMIT = 40302
    NOT_FOUND = 40401
    CONFLICT = 40901
    TOO_MANY_REQUESTS = 42901
    INTERNAL = 50001
    UNAVAILABLE = 50301

    @property
    def http_status(self) -> int:
        """HTTP status that mirrors the code: 40001 → 400, 50301 → 503, 0 → 200."""
        return 200 if self == Code.SUCCESS else int(self) // 100


class PhoneFleetError(Exception):
    """Base of every error the api answers with a code other than 50001."""

    code: Code = Code.INTERNAL

    def __init__(self, message: str, *, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class InvalidParams(PhoneFleetError):
    code = Code.INVALID_PARAMS

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem, data={"field": field} if field else None)
        self.field = field


class ScriptNameMissing(PhoneFleetError):
    code = Code.SCRIPT_NAME_MISSING

    def __init__(self) -> None:
        super().__init__("script_name: required")


class ScriptNotSupported(PhoneFleetError):
    code = Code.SCRIPT_NOT_SUPPORTED


class AccountNotFound(PhoneFleetError):
    code = Code.ACCOUNT_NOT_FOUND


class Unauthorized(PhoneFleetError):
    code = Code.UNAUTHORIZED


class PlanHasNoApi(PhoneFleetError):
    code = Code.PLAN_NO_API


class DeviceLimitExceeded(PhoneFleetError):
    code = Code.DEVICE_LIMIT


class NotFound(PhoneFleetError):
    code = Code.NOT_FOUND


class Conflict(PhoneFleetError):
    code = Code.CONFLICT


class ServiceUnavailable(PhoneFleetError):
    code = Code.UNAVAILABLE
