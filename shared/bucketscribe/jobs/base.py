"""The job-store port: durable job records with state changes guarded by conditions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from bucketscribe.model import Job, JobState


class JobStore(Protocol):
    def create(self, job: Job) -> bool:
        """Store a new job; ``False`` if a job with that id already exists (nothing written)."""
        ...

    def get(self, job_id: str) -> Job | None: ...

    def claim(self, job: Job, *, now: datetime) -> bool:
        """Write ``job`` (carrying a new ``claimed_until``) only if the stored job is ACCEPTED and
        nobody else's claim is still running at ``now``; ``False`` otherwise."""
        ...

    def replace(self, job: Job, *, expected: Iterable[JobState]) -> bool:
        """Write ``job`` only if the stored job's state is one of ``expected``; ``False`` otherwise."""
        ...

    def record_task(self, provider: str, task_id: str, files: dict[str, str]) -> None:
        """Remember which jobs one provider task carries, and each one's file (job id → file key):
        a push names only the task."""
        ...

    def task_files(self, provider: str, task_id: str) -> dict[str, str]: ...

    def due(self, now: datetime, *, limit: int) -> list[Job]:
        """Unfinished jobs whose ``next_check_at`` is at or before ``now`` (oldest first)."""
        ...
