"""What the event stream carries."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.tasks.schemas import TaskPublic


class TaskEvent(TaskPublic):
    """A task as ``GET /task/{id}`` shows it, plus when it last changed."""

    updated_at: datetime = Field(description="when the task last changed")
