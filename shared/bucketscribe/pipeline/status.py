"""Use cases: tell a user where a job stands, by its id or by the upload (bucket + key)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from bucketscribe.job import AttemptState, Job, JobError, JobState
from bucketscribe.jobs.base import JobStore
from bucketscribe.model import Coverage, TranscriptWarning


class AttemptView(BaseModel):
    number: int
    state: AttemptState
    reason: str
    started_at: datetime
    ended_at: datetime | None
    provider_task_id: str | None
    bound_by: str | None
    error: JobError | None


class JobView(BaseModel):
    """What a user may see of a job: no tokens, no presigned URLs."""

    id: str
    state: JobState
    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    profile: str
    provider: str
    model: str | None
    provider_task_id: str | None
    error: JobError | None
    outputs: list[str]
    coverage: Coverage | None
    warnings: list[TranscriptWarning]
    attempts: list[AttemptView]
    redrives: int
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None
    next_check_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobView:
        return cls(
            id=job.id,
            state=job.state,
            bucket=job.source.bucket,
            key=job.source.key,
            version_id=job.source.version_id,
            etag=job.source.etag,
            profile=job.profile,
            provider=job.provider,
            model=job.model,
            provider_task_id=job.provider_task_id,
            error=job.error,
            outputs=job.outputs,
            coverage=job.coverage,
            warnings=job.warnings,
            attempts=[
                AttemptView(
                    number=a.number,
                    state=a.state,
                    reason=a.reason,
                    started_at=a.started_at,
                    ended_at=a.ended_at,
                    provider_task_id=a.task_id,
                    bound_by=a.bound_by,
                    error=a.error,
                )
                for a in job.attempts
            ],
            redrives=job.redrives,
            created_at=job.created_at,
            updated_at=job.updated_at,
            submitted_at=job.submitted_at,
            finished_at=job.finished_at,
            next_check_at=None if job.state.is_final else job.next_check_at,
        )


class UploadJobs(BaseModel):
    """The latest job for an upload's key, and the ids of jobs of its earlier revisions."""

    latest: JobView
    earlier: list[str] = Field(default_factory=list)


def job_status(job_id: str, jobs: JobStore) -> JobView | None:
    job = jobs.get(job_id)
    return JobView.of(job) if job else None


def jobs_for_upload(bucket: str, key: str, jobs: JobStore) -> UploadJobs | None:
    found = jobs.for_source(bucket, key, limit=10)
    if not found:
        return None
    # The index may lag a little: the job itself is read for the latest state.
    latest = jobs.get(found[0].id) or found[0]
    return UploadJobs(latest=JobView.of(latest), earlier=[job.id for job in found[1:]])
