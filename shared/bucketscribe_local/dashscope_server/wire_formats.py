"""How DashScope writes task states, times, billed durations and words on the wire."""

from __future__ import annotations

import math
import unicodedata
from datetime import datetime, timedelta, timezone
from enum import StrEnum

BEIJING = timezone(timedelta(hours=8))


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"

    @property
    def is_final(self) -> bool:
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED)


def split_punctuation(token: str) -> tuple[str, str]:
    """``" Hello,"`` → ``("Hello", ",")``: DashScope words carry trailing punctuation apart."""
    text = token.strip()
    cut = len(text)
    while cut > 0 and unicodedata.category(text[cut - 1]).startswith("P"):
        cut -= 1
    if cut == 0:
        return text, ""
    return text[:cut], text[cut:]


def beijing_time(epoch_s: float, *, millis: bool = True) -> str:
    """``2025-02-13 17:31:20.681``: DashScope's task times are Beijing wall-clock times."""
    moment = datetime.fromtimestamp(epoch_s, BEIJING)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}" if millis else text


def epoch_ms(epoch_s: float | None) -> int | None:
    return None if epoch_s is None else int(epoch_s * 1000)


def audio_seconds(duration_ms: int) -> int:
    """DashScope bills whole seconds, rounded up."""
    return math.ceil(duration_ms / 1000) if duration_ms > 0 else 0
