"""The EventBridge ``dashscope:System:AsyncTaskFinish`` event DashScope pushes when a task ends.

Shape: providers.md §1.7. It carries only the task id and status; the result
is always fetched from the DashScope API.
"""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

TASK_FINISHED_TYPE = "dashscope:System:AsyncTaskFinish"


class PushRejected(ValueError):
    """The request is not a DashScope task-finished event."""


class _TaskData(BaseModel):
    model_config = ConfigDict(extra="ignore")
    task_id: str = Field(min_length=1, max_length=128)
    task_status: str | None = None


class TaskFinishedEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=256)
    source: str
    type: str
    time: datetime | None = None
    data: _TaskData

    @classmethod
    def parse(cls, body: str) -> TaskFinishedEvent:
        try:
            event = cls.model_validate(json.loads(body))
        except (json.JSONDecodeError, ValidationError, TypeError) as exc:
            raise PushRejected("not a CloudEvent with data.task_id") from exc
        if event.source != "acs.dashscope" or event.type != TASK_FINISHED_TYPE:
            raise PushRejected(f"unexpected event {event.source}/{event.type}")
        return event
