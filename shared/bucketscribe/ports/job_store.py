"""The job-store port: durable job records, written only over the version they were derived from."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from bucketscribe.domain.job import Job, JobState


def refuse_draft(job: Job) -> None:
    """What every store's ``create`` checks first (see ``JobStore.create``)."""
    if job.draft:
        raise ValueError(f"job {job.id} is a draft: it is stored by its first transition")


class JobStore(Protocol):
    def create(self, job: Job) -> bool:
        """Store a new job; ``False`` if a job with that id already exists (nothing written).
        A draft is refused with ``ValueError``: it is stored by its first transition."""
        ...

    def get(self, job_id: str) -> Job | None:
        """The job as stored now (a strongly consistent read)."""
        ...

    def save(self, job: Job) -> bool:
        """Write ``job`` only if the stored copy has version ``job.version - 1`` (the copy it was
        derived from); ``False`` when someone else changed the job meanwhile (nothing written)."""
        ...

    def bind_task(
        self, provider: str, task_id: str, files: dict[str, str], *, exclusive: bool = False
    ) -> dict[str, str]:
        """Record which jobs one provider task carries (job id → its file in the task) and return
        what is recorded now. A job already recorded keeps its first binding; other jobs are
        added, unless ``exclusive`` (a one-file task) and the task already carries another job."""
        ...

    def task_files(self, provider: str, task_id: str) -> dict[str, str]:
        """The jobs a provider task was bound to (empty when it is not ours, or not yet known)."""
        ...

    def take_lease(self, name: str, *, owner: str, until: datetime, now: datetime) -> bool:
        """Hold the named lease (one reconciler run at a time, say) until ``until``, if nobody
        holds it now (it is free, or its holder's time ran out); ``False`` otherwise."""
        ...

    def end_lease(self, name: str, *, owner: str) -> None:
        """Give the named lease up early, if ``owner`` still holds it (else nothing happens)."""
        ...

    def due(self, now: datetime, *, limit: int) -> list[Job]:
        """Unfinished jobs whose ``next_check_at`` is at or before ``now`` (oldest first). Read from
        an index that may lag: callers re-read a job before acting on it."""
        ...

    def deliveries_due(self, now: datetime, *, limit: int) -> list[Job]:
        """Finished jobs with an event delivery due at or before ``now`` (``Job.next_delivery_at``,
        oldest first). Read from an index that may lag: callers re-read a job before acting on it."""
        ...

    def for_source(self, bucket: str, key: str, *, limit: int = 10) -> list[Job]:
        """Jobs of uploads to ``bucket``/``key`` (each revision has its own), newest first."""
        ...

    def listing(
        self, *, state: JobState | None, since: datetime | None, key_prefix: str | None, limit: int
    ) -> list[Job]:
        """Jobs for an operator, most recently changed first, optionally by state, time and key."""
        ...
