"""The reconciler's "is anything stuck?" figure: the age of the oldest unfinished job."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bucketscribe.domain.clock import utc_now
from bucketscribe.domain.job import Job, JobState
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.entrypoints.reconcile import oldest_unfinished_age_s
from tests.fakes import InMemoryJobStore

pytestmark = pytest.mark.unit
NOW = utc_now()


def _stored(
    jobs: InMemoryJobStore, key: str, *, trying_for: timedelta, state: JobState, check_in: timedelta
) -> None:
    started = NOW - trying_for
    job = Job.for_upload(
        ObjectRef(bucket="b", key=key, etag=key), profile="default", provider="sis", model=None, now=started
    )
    jobs.jobs[job.id] = job.model_copy(update={"state": state, "next_check_at": NOW + check_in})


def test_the_oldest_unfinished_job_counts_also_when_it_is_not_due_yet() -> None:
    jobs = InMemoryJobStore()
    _stored(jobs, "done", trying_for=timedelta(days=3), state=JobState.DONE, check_in=timedelta(0))
    _stored(
        jobs, "waiting", trying_for=timedelta(hours=2), state=JobState.SUBMITTED, check_in=timedelta(hours=1)
    )
    _stored(
        jobs, "due", trying_for=timedelta(minutes=30), state=JobState.ACCEPTED, check_in=-timedelta(minutes=1)
    )
    assert oldest_unfinished_age_s(jobs, NOW) == pytest.approx(2 * 3600)


def test_nothing_unfinished_is_age_zero() -> None:
    jobs = InMemoryJobStore()
    _stored(jobs, "done", trying_for=timedelta(days=3), state=JobState.FAILED, check_in=timedelta(0))
    assert oldest_unfinished_age_s(jobs, NOW) == 0
