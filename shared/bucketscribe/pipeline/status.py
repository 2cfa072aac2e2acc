"""Use cases: tell a user where a job stands, by its id or by the upload (bucket + key)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from bucketscribe.domain.job import AttemptState, Job, JobError, JobState, PartOf, PartRef, StreamMetrics
from bucketscribe.domain.job_events import EventDelivery, EventType
from bucketscribe.domain.media_routing import MediaProbe, RouteDecision
from bucketscribe.domain.transcript import Coverage, TranscriptWarning
from bucketscribe.ports.job_store import JobStore


class AttemptView(BaseModel):
    number: int
    state: AttemptState
    reason: str
    started_at: datetime
    ended_at: datetime | None
    provider_task_id: str | None
    bound_by: str | None
    error: JobError | None
    # Real-time mode: the stream's first/last-package delays, audio and streaming time.
    stream: StreamMetrics | None = None


class PartView(BaseModel):
    """One part of a split upload: its own job, where it lies in the upload, where it stands."""

    index: int
    job_id: str
    start_ms: int
    end_ms: int
    state: JobState | None  # None: its job is not made yet (it will be)
    provider_task_id: str | None = None
    error: JobError | None = None


class EventView(BaseModel):
    """One event of the job's end and where each of its deliveries stands (what it said is the
    job's own record; no receiver's URL, no secret)."""

    id: str
    type: EventType
    timestamp: datetime
    deliver_until: datetime
    deliveries: list[EventDelivery]


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
    # What the upload holds and how it went to the provider (as it is, copied, re-encoded, cut).
    media: MediaProbe | None = None
    media_route: RouteDecision | None = None
    # A split upload's parts, or the upload's job this part belongs to.
    parts: list[PartView] = Field(default_factory=list)
    part_of: PartOf | None = None
    # SUPERSEDED: the job of the later upload of the key that replaced this one.
    superseded_by: str | None = None
    redrives: int
    # Waiting in the queue for the provider's capacity (its quota was full): since when, and how
    # many times it was turned away (a wait leaves no attempt behind).
    waiting_since: datetime | None = None
    capacity_waits: int = 0
    # The events of the job's end(s): webhook and event-bus deliveries, attempts, the last error.
    events: list[EventView] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None
    next_check_at: datetime | None

    @classmethod
    def of(cls, job: Job, parts: list[Job] | None = None) -> JobView:
        """``parts``: the jobs of a split upload's parts, where the caller has read them."""
        part_jobs = {part.id: part for part in parts or []}
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
            waiting_since=job.waiting_since,
            capacity_waits=job.capacity_waits,
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
                    stream=a.stream,
                )
                for a in job.attempts
            ],
            media=job.media,
            media_route=job.media_route,
            parts=[_part_view(ref, part_jobs.get(ref.job_id)) for ref in job.parts],
            part_of=job.part_of,
            superseded_by=job.superseded_by,
            redrives=job.redrives,
            events=[
                EventView(
                    id=event.id,
                    type=event.type,
                    timestamp=event.timestamp,
                    deliver_until=event.deliver_until,
                    deliveries=event.deliveries,
                )
                for event in job.events
            ],
            created_at=job.created_at,
            updated_at=job.updated_at,
            submitted_at=job.submitted_at,
            finished_at=job.finished_at,
            next_check_at=None if job.state.is_final else job.next_check_at,
        )


def _part_view(ref: PartRef, job: Job | None) -> PartView:
    return PartView(
        index=ref.index,
        job_id=ref.job_id,
        start_ms=ref.start_ms,
        end_ms=ref.end_ms,
        state=job.state if job else None,
        provider_task_id=job.provider_task_id if job else None,
        error=job.error if job else None,
    )


def _view(job: Job, jobs: JobStore) -> JobView:
    parts = [part for part in (jobs.get(ref.job_id) for ref in job.parts) if part is not None]
    return JobView.of(job, parts)


class UploadJobs(BaseModel):
    """The latest job for an upload's key, and the ids of jobs of its earlier revisions."""

    latest: JobView
    earlier: list[str] = Field(default_factory=list)


def job_status(job_id: str, jobs: JobStore) -> JobView | None:
    job = jobs.get(job_id)
    return _view(job, jobs) if job else None


def jobs_for_upload(bucket: str, key: str, jobs: JobStore) -> UploadJobs | None:
    found = jobs.for_source(bucket, key, limit=10)
    if not found:
        return None
    # The index may lag a little: the job itself is read for the latest state.
    latest = jobs.get(found[0].id) or found[0]
    return UploadJobs(latest=_view(latest, jobs), earlier=[job.id for job in found[1:]])
