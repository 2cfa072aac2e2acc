"""The EventBridge ``dashscope:System:AsyncTaskFinish`` event DashScope pushes when a task ends.

Shape: providers.md §1.7. It carries only the task id and status; the result
is always fetched from the DashScope API.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bucketscribe.ports.provider import Push, PushRejected

TASK_FINISHED_TYPE = "dashscope:System:AsyncTaskFinish"
# EventBridge's signing time, sent with each delivery to an API destination.
SIGNING_TIME_HEADER = "x-eventbridge-signature-timestamp"
# Epoch milliseconds have 13 digits until the year 2286; anything longer is not a timestamp.
MAX_TIMESTAMP_DIGITS = 13


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


def pushed(body: str, header: Callable[[str], str | None]) -> Push:
    """The push in ``body``, sent at EventBridge's signing time when the delivery carries one (a
    header that is not a sane time leaves no usable time, never a guessed one), else the event's
    own time."""
    push = TaskFinishedEvent.parse(body).as_push()
    signing_time = header(SIGNING_TIME_HEADER)
    if signing_time is not None:
        push = push.model_copy(update={"sent_at": signed_at(signing_time)})
    return push


def signed_at(header: str) -> datetime | None:
    """EventBridge's signing timestamp (epoch ms or s); ``None`` when it is not a sane number."""
    if not header or not header.isascii() or not header.isdigit() or len(header) > MAX_TIMESTAMP_DIGITS:
        return None
    value = int(header)
    # Epoch milliseconds, or seconds: 1e11 s is the year 5138, 1e11 ms is 1973.
    return datetime.fromtimestamp(value / 1000 if value >= 100_000_000_000 else value, tz=UTC)
