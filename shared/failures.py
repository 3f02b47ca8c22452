"""Why a task failed, and whether trying again could help.

Scripts raise :class:`ScriptFailure` with one of these kinds; the dispatcher auto-retries only the
retryable ones (a banned account does not get better by posting again).
"""

from __future__ import annotations

from enum import StrEnum


class FailureKind(StrEnum):
    DEVICE_OFFLINE = "device_offline"
    APP_CRASH = "app_crash"
    TIMEOUT = "timeout"
    HUB_LOST = "hub_lost"
    LOGIN_WALL = "login_wall"
    ACCOUNT_BANNED = "account_banned"
    ACCOUNT_MISSING = "account_missing"
    MATERIAL_MISSING = "material_missing"
    PATH_REFUSED = "path_refused"
    BAD_CONFIG = "bad_config"
    STOPPED = "stopped"
    SCRIPT_ERROR = "script_error"


RETRYABLE: frozenset[FailureKind] = frozenset(
    {FailureKind.DEVICE_OFFLINE, FailureKind.APP_CRASH, FailureKind.TIMEOUT, FailureKind.HUB_LOST}
)


def is_retryable(kind: FailureKind) -> bool:
    """True for failures that a later attempt may not meet (the phone, the app, the network)."""
    return kind in RETRYABLE
