"""``GET /license/check``: the caller's plan, as TikMatrix reports it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.auth import CurrentPrincipal
from api.envelope import Envelope, error_response, error_responses, ok
from api.settings import SettingsDep
from shared.errors import Code
from shared.settings import Plan

router = APIRouter(tags=["license"])


class LicenseInfo(BaseModel):
    plan_name: str
    api_enabled: bool
    device_limit: int
    message: str


@router.get(
    "/license/check",
    summary="Check API access",
    response_model=Envelope[LicenseInfo],
    responses=error_responses(),
)
def license_check(principal: CurrentPrincipal, settings: SettingsDep) -> Envelope[LicenseInfo] | JSONResponse:
    """Starter answers code 40301 (with the same data); Pro, Team and Business have API access."""
    enabled = principal.plan is not Plan.STARTER
    info = LicenseInfo(
        plan_name=principal.plan.value.capitalize(),
        api_enabled=enabled,
        device_limit=settings.device_limit(principal.plan),
        message="API access enabled"
        if enabled
        else "the Starter plan has no API access; upgrade to Pro, Team or Business",
    )
    if not enabled:
        return error_response(Code.PLAN_NO_API, info.message, info.model_dump())
    return ok(info)
