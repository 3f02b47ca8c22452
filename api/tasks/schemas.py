"""Request and response shapes of the task endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.schedule import START_TIME_PATTERN

# adb serials are printable ASCII without spaces ("R58M41ABCDE", "emulator-5554", "10.0.0.7:5555").
Serial = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[!-~]+$")]
Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Source = Literal["api", "ui"]
WebhookUrl = Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://[^\s/$.?#][^\s]*$")]

SEED_EXAMPLE: dict[str, Any] = {
    "serials": ["device_serial_1"],
    "script_name": "post",
    "script_config": {
        "content_type": 0,
        "captions": "Regardez ma nouvelle vidéo ! #tendance #recommandé",
        "material_list": ["C:/Videos/video1.mp4"],
        "upload_wait_time": 60,
    },
}


class TaskCreate(BaseModel):
    """``POST /task``: give ``serials`` (device mode) or ``usernames`` (usernames mode)."""

    model_config = ConfigDict(
        strict=True,
        extra="ignore",
        json_schema_extra={
            "examples": [
                SEED_EXAMPLE,
                {
                    "usernames": ["alice", "bob"],
                    "script_name": "post",
                    "script_config": {
                        "content_type": 1,
                        "image_count": 3,
                        "captions": "{Hi|Hello} ##Look at this",
                    },
                    "start_time": "21:30",
                },
            ]
        },
    )

    serials: list[Serial] | None = Field(default=None, max_length=100_000)
    usernames: list[Username] | None = Field(default=None, max_length=100_000)
    script_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    script_config: dict[str, Any]
    enable_multi_account: bool = False
    start_time: str | None = Field(default=None, pattern=START_TIME_PATTERN, examples=["21:30"])
    source: Source = "api"
    webhook_url: WebhookUrl | None = Field(
        default=None, description="phonefleet: POST the task's end here, signed (see docs/webhooks.md)"
    )


class TaskCreated(BaseModel):
    task_ids: list[int]
    created_count: int


class TaskPublic(BaseModel):
    """A task as the api shows it; times are ISO 8601 in the server's time zone, with offset."""

    id: int
    serial: str
    username: str | None
    platform: str
    script_name: str
    script_config: dict[str, Any]
    status: int = Field(description="0 pending, 1 running, 2 completed, 3 failed")
    source: str
    start_time: str | None
    scheduled_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    end_time: datetime | None
    retry_count: int
    remark: str
    hub: str | None
    attempt: int = Field(description="how many times the task was handed to a phone")
    failure_kind: str | None
    stop_requested: bool
    webhook_url: str | None = None


class TaskList(BaseModel):
    tasks: list[TaskPublic]
    total: int
    page: int
    page_size: int


class TaskIds(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    task_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=1, max_length=10_000)


class DeletedCount(BaseModel):
    deleted_count: int


class RetriedCount(BaseModel):
    retried_count: int


class TaskStats(BaseModel):
    total: int
    pending: int
    running: int
    completed: int
    failed: int


class TaskLogLine(BaseModel):
    id: int
    attempt: int
    at: datetime
    level: str
    message: str
    fields: dict[str, Any]


class WebhookDeliveryPublic(BaseModel):
    id: int
    url: str
    event: str
    status: str = Field(description="pending, delivered or failed (after the last attempt)")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime


class TaskWebhooks(BaseModel):
    task_id: int
    deliveries: list[WebhookDeliveryPublic]


class TaskLogs(BaseModel):
    task_id: int
    logs: list[TaskLogLine]
