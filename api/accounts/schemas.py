"""Shapes of the accounts endpoints (TikMatrix's account fields; the password is write-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.tasks.schemas import Serial

Platform = Literal["tiktok", "instagram"]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
PackageName = Annotated[
    str, StringConstraints(min_length=3, max_length=200, pattern=r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")
]
Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class AccountCreate(BaseModel):
    model_config = ConfigDict(
        strict=True,
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "username": "alice",
                    "platform": "tiktok",
                    "device": "R58M41ABCDE",
                    "logined": 1,
                    "tags": ["fr"],
                }
            ]
        },
    )

    username: Username
    platform: Platform
    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    password: Annotated[str, StringConstraints(max_length=200)] | None = None
    packagename: PackageName | None = Field(default=None, description="a clone app's package; null = the default app")
    device: Serial | None = None
    logined: Literal[0, 1] = 0
    status: Literal[0, 1] = Field(default=0, description="0 enabled, 1 disabled")
    tags: list[Tag] = Field(default_factory=list, max_length=50)


class AccountUpdate(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    password: Annotated[str, StringConstraints(max_length=200)] | None = None
    packagename: PackageName | None = None
    device: Serial | None = None
    logined: Literal[0, 1] | None = None
    status: Literal[0, 1] | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)


class AccountPublic(BaseModel):
    id: int
    username: str
    email: str | None
    platform: str
    packagename: str | None
    device: str | None
    device_online: bool
    device_name: str | None
    logined: int
    status: int
    tags: list[str]
    created_at: datetime


class AccountList(BaseModel):
    accounts: list[AccountPublic]
    total: int
    page: int
    page_size: int
