"""The provider-side job listing (``GET /_emulator/jobs``): one row per file a provider job works on.

The CLI's progress display and the soak benchmark count provider jobs per upload from it, so the
shape is fixed: ``{"jobs": [{"task_id", "file_url", "state", "created_at", "finished_at",
"audio_ms_total", "audio_ms_done", "lost_response"}]}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel

from bucketscribe_local.speech import ProgressCallback


class EmulatedJobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    EXPIRED = "expired"


class EmulatedJob(BaseModel):
    task_id: str
    file_url: str
    state: EmulatedJobState
    created_at: str
    finished_at: str | None
    audio_ms_total: int | None
    audio_ms_done: int
    lost_response: bool


class EmulatedJobs(BaseModel):
    jobs: list[EmulatedJob]


def iso_utc(epoch_s: float) -> str:
    """``2025-02-13T09:31:20.681Z``: what the listing's times look like."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class AudioProgress:
    """How much of a file the engine has decoded; written by the worker, read by the listing."""

    total_ms: int | None = None
    done_ms: int = 0

    def reporter(self, pass_index: int = 0, passes: int = 1) -> ProgressCallback:
        """The ``on_progress`` for pass ``pass_index`` of ``passes`` over the same audio (one per channel)."""

        def report(done_ms: int, total_ms: int) -> None:
            self.total_ms = total_ms
            self.done_ms = min(total_ms, (pass_index * total_ms + done_ms) // max(passes, 1))

        return report

    def complete(self, total_ms: int) -> None:
        self.total_ms = total_ms
        self.done_ms = total_ms
