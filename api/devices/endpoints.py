"""Devices as their hubs reported them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, func, select
from sqlmodel import col

from api.auth import require_api
from api.deps import UoW
from api.envelope import Envelope, error_responses, ok
from api.settings import SettingsDep
from shared.db.models import Device
from shared.errors import Code, NotFound
from shared.settings import Settings

router = APIRouter(tags=["devices"], dependencies=[Depends(require_api)])


class DevicePublic(BaseModel):
    serial: str
    hub: str | None
    online: bool
    state: str
    busy: bool
    current_task_id: int | None
    model: str | None
    properties: dict[str, Any]
    last_seen: datetime | None


class DeviceList(BaseModel):
    devices: list[DevicePublic]
    total: int
    page: int
    page_size: int


def _public(device: Device, settings: Settings) -> DevicePublic:
    return DevicePublic(
        serial=device.serial,
        hub=device.hub,
        online=device.online,
        state=device.state,
        busy=device.lease_task_id is not None,
        current_task_id=device.lease_task_id,
        model=device.model,
        properties=device.properties,
        last_seen=device.last_seen.astimezone(settings.zone) if device.last_seen else None,
    )


@router.get(
    "/devices",
    summary="List devices",
    response_model=Envelope[DeviceList],
    responses=error_responses(Code.INVALID_PARAMS),
)
def list_devices(
    uow: UoW,
    settings: SettingsDep,
    hub: Annotated[str | None, Query(max_length=200)] = None,
    online: Annotated[bool | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=10_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Envelope[DeviceList]:
    """Every device a hub has reported, by serial. A task may name a serial not listed here: it
    waits until some hub reports that device online."""
    where: list[ColumnElement[bool]] = []
    if hub is not None:
        where.append(col(Device.hub) == hub)
    if online is not None:
        where.append(col(Device.online) == online)
    rows = uow.session.scalars(
        select(Device).where(*where).order_by(col(Device.serial)).offset((page - 1) * page_size).limit(page_size)
    )
    total = int(uow.session.scalar(select(func.count()).select_from(Device).where(*where)) or 0)
    return ok(DeviceList(devices=[_public(d, settings) for d in rows], total=total, page=page, page_size=page_size))


@router.get(
    "/devices/{serial}",
    summary="One device",
    response_model=Envelope[DevicePublic],
    responses=error_responses(Code.NOT_FOUND),
)
def get_device(serial: Annotated[str, Path(max_length=128)], uow: UoW, settings: SettingsDep) -> Envelope[DevicePublic]:
    device = uow.session.get(Device, serial)
    if device is None:
        raise NotFound(f"device {serial!r} not known; no hub has reported it")
    return ok(_public(device, settings))
