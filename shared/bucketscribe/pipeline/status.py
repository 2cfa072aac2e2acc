"""Use case: tell a user where one job stands (``GET /jobs/{id}``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from bucketscribe.jobs.base import JobStore
from bucketscribe.model import JobError, JobState


class JobView(BaseModel):
    """What a user may see of a job: no tokens, no presigned URLs."""

    id: str
    state: JobState
    bucket: str
    key: str
    profile: str
    provider: str
    model: str | None
    provider_task_id: str | None
    attempts: int
    error: JobError | None
    outputs: list[str]
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None


def job_status(job_id: str, jobs: JobStore) -> JobView | None:
    job = jobs.get(job_id)
    if job is None:
        return None
    return JobView(
        id=job.id,
        state=job.state,
        bucket=job.source.bucket,
        key=job.source.key,
        profile=job.profile,
        provider=job.provider,
        model=job.model,
        provider_task_id=job.provider_task_id,
        attempts=job.attempts,
        error=job.error,
        outputs=job.outputs,
        created_at=job.created_at,
        updated_at=job.updated_at,
        submitted_at=job.submitted_at,
        finished_at=job.finished_at,
    )
