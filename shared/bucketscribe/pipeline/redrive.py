"""Use case: an operator deliberately runs finished jobs again.

A re-drive sends the job back to ACCEPTED, due at once: the reconciler's next run submits it as
a new attempt, linked to the earlier ones in the job's record. A job that is still in flight is
never re-driven (that would pay for it twice); a DONE job only when asked for explicitly.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from bucketscribe.domain.job import JobState
from bucketscribe.pipeline.steps.job_writes import apply
from bucketscribe.ports.job_store import JobStore


class RedriveOutcome(StrEnum):
    REDRIVEN = "REDRIVEN"
    IN_FLIGHT = "IN_FLIGHT"
    ALREADY_DONE = "ALREADY_DONE"
    NOT_FOUND = "NOT_FOUND"
    PART = "PART"  # a part of a split upload: its upload's job is the one to re-drive


class RedriveResult(BaseModel):
    job_id: str
    outcome: RedriveOutcome
    detail: str


def redrive_job(
    job_id: str, jobs: JobStore, *, now: datetime, reason: str, include_done: bool = False
) -> RedriveResult:
    job = jobs.get(job_id)
    if job is None:
        return RedriveResult(job_id=job_id, outcome=RedriveOutcome.NOT_FOUND, detail="no such job")
    if job.part_of is not None:
        return RedriveResult(
            job_id=job_id,
            outcome=RedriveOutcome.PART,
            detail=f"a part of job {job.part_of.parent_id}: re-drive that one (its failed parts run again)",
        )
    if not job.state.is_final:
        return RedriveResult(
            job_id=job_id,
            outcome=RedriveOutcome.IN_FLIGHT,
            detail=f"the job is still {job.state.value}; nothing was changed",
        )
    if job.state is JobState.DONE and not include_done:
        return RedriveResult(
            job_id=job_id,
            outcome=RedriveOutcome.ALREADY_DONE,
            detail="the job is DONE; pass --include-done to transcribe it again",
        )
    redriven = apply(jobs, job, lambda current: current.redrive(now, reason=reason))
    if redriven is None:
        return RedriveResult(
            job_id=job_id, outcome=RedriveOutcome.IN_FLIGHT, detail="the job changed meanwhile"
        )
    return RedriveResult(
        job_id=job_id,
        outcome=RedriveOutcome.REDRIVEN,
        detail=f"attempt {len(redriven.attempts) + 1} will be submitted by the reconciler's next run",
    )


def redrive_failed(
    jobs: JobStore, *, now: datetime, reason: str, since: datetime | None, limit: int = 1000
) -> list[RedriveResult]:
    failed = jobs.listing(state=JobState.FAILED, since=since, key_prefix=None, limit=limit)
    return [redrive_job(job.id, jobs, now=now, reason=reason) for job in failed]
