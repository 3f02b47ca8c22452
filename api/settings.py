"""Settings as a request dependency (tests override it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from shared.settings import Settings, get_settings


async def current_settings() -> Settings:
    """``get_settings()`` on the event loop (a sync dependency would cost a thread hop per request)."""
    return get_settings()


SettingsDep = Annotated[Settings, Depends(current_settings)]
