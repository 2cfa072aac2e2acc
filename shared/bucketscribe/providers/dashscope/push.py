"""The EventBridge ``dashscope:System:AsyncTaskFinish`` event DashScope pushes when a task ends.

Shape: providers.md §1.7. It carries only the task id and status; the result
is always fetched from the DashScope API.
"""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bucketscribe.ports.provider import Push, PushRejected

TASK_FINISHED_TYPE = "dashscope:System:AsyncTaskFinish"


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
        except (json.JSONDecodeError, ValidationError, TypeError, RecursionError) as exc:
            raise PushRejected("not a CloudEvent with data.task_id") from exc
        if event.source != "acs.dashscope" or event.type != TASK_FINISHED_TYPE:
            raise PushRejected(f"unexpected event {event.source[:40]}/{event.type[:60]}")
        return event

    def as_push(self) -> Push:
        sent = self.time if self.time is not None and self.time.tzinfo is not None else None
        return Push(task_id=self.data.task_id, sent_at=sent)
