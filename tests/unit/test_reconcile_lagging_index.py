"""The reconciler on an index that lags the table, as GeminiDB's may (Huawei: usually under a
second, at worst 1–2 minutes) and as DynamoDB's global secondary indexes may.

``due()`` reads the index; every job it names is re-read with a consistent read before anything is
done. Here the index is a snapshot taken earlier, so what it shows is stale in each of the ways a
lagging index can be: a finished job still listed, a job already moved on or rescheduled, a job
not listed yet. None of them may cause a second provider task, a second write of the outputs, or
a lost job.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bucketscribe.domain.job import Job, JobState
from bucketscribe.domain.transcript import Segment, Transcript
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.pipeline.submit import submit_uploads
from bucketscribe.ports.provider import ProviderError
from tests.audio import tone_wav
from tests.fakes import FakeProvider, InMemoryJobStore, InMemoryStorage, SettableClock

pytestmark = pytest.mark.unit


class LaggingIndexJobStore(InMemoryJobStore):
    """The table answers reads at once; the index answers from ``show``'s copy until ``catch_up``."""

    def __init__(self) -> None:
        super().__init__()
        self._index: dict[str, Job] | None = None

    def snapshot(self) -> dict[str, Job]:
        """The jobs as they are now: what a lagging index will still show later."""
        return dict(self.jobs)

    def show(self, index: dict[str, Job]) -> None:
        self._index = index

    def catch_up(self) -> None:
        self._index = None

    def due(self, now: datetime, *, limit: int) -> list[Job]:
        if self._index is None:
            return super().due(now, limit=limit)
        listed = [
            job
            for job in self._index.values()
            if not job.state.is_final and job.next_check_at and job.next_check_at <= now
        ]
        return sorted(listed, key=lambda job: job.next_check_at or now)[:limit]


@pytest.fixture
def lagging(ports: PipelinePorts) -> LaggingIndexJobStore:
    store = LaggingIndexJobStore()
    ports.jobs = store
    return store


def upload(ports: PipelinePorts, name: str = "a.wav") -> str:
    assert isinstance(ports.storage, InMemoryStorage)
    ports.storage.add("recordings", f"incoming/{name}", tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key=f"incoming/{name}")], ports)
    assert result.job_id is not None
    return result.job_id


def stored(store: LaggingIndexJobStore, job_id: str) -> Job:
    job = store.get(job_id)
    assert job is not None
    return job


def finish(provider: FakeProvider, job: Job) -> None:
    assert job.provider_task_id is not None
    segments = [Segment(start_ms=0, end_ms=900, text="found")]
    provider.finish(job.provider_task_id, Transcript(provider="sis", duration_ms=900, segments=segments))


def later(ports: PipelinePorts, by: timedelta) -> None:
    clock = ports.clock
    assert isinstance(clock, SettableClock)
    clock.now += by


def test_a_finished_job_still_listed_as_due_is_left_alone(
    ports: PipelinePorts, provider: FakeProvider, lagging: LaggingIndexJobStore
) -> None:
    job_id = upload(ports)
    finish(provider, stored(lagging, job_id))
    later(ports, ports.limits.first_check_after)
    stale = lagging.snapshot()  # SUBMITTED and due
    assert reconcile(ports).finished == 1
    assert isinstance(ports.storage, InMemoryStorage)
    written = ports.storage.get("recordings", "transcripts/a.wav.json")
    saves, fetches = lagging.saves, list(provider.fetches)
    lagging.show(stale)
    report = reconcile(ports)
    assert report.due == 1 and (report.finished, report.failed, report.tasks_fetched) == (0, 0, 0)
    assert lagging.saves == saves and provider.fetches == fetches
    assert stored(lagging, job_id).state is JobState.DONE
    assert ports.storage.get("recordings", "transcripts/a.wav.json") == written


def test_a_job_listed_as_waiting_for_submission_after_it_was_submitted_is_not_submitted_again(
    ports: PipelinePorts, provider: FakeProvider, lagging: LaggingIndexJobStore
) -> None:
    provider.submit_error = ProviderError("SIS.0312", "busy", retryable=True)
    job_id = upload(ports)
    provider.submit_error = None
    later(ports, ports.limits.submit_retry_after)
    stale = lagging.snapshot()  # ACCEPTED and due for another submission
    assert stale[job_id].state is JobState.ACCEPTED
    assert reconcile(ports).submitted == 1 and len(provider.submissions) == 1
    saves = lagging.saves
    lagging.show(stale)
    report = reconcile(ports)
    assert report.due == 1 and report.submitted == 0
    assert len(provider.submissions) == 1 and lagging.saves == saves
    assert stored(lagging, job_id).state is JobState.SUBMITTED


def test_a_job_listed_with_a_check_time_it_no_longer_has_is_not_checked_early(
    ports: PipelinePorts, provider: FakeProvider, lagging: LaggingIndexJobStore
) -> None:
    job_id = upload(ports)
    later(ports, ports.limits.first_check_after)
    stale = lagging.snapshot()  # due now
    assert reconcile(ports).still_pending == 1  # pending at SIS: the next look moves later
    rescheduled = stored(lagging, job_id)
    assert rescheduled.next_check_at is not None and rescheduled.next_check_at > ports.clock()
    fetches, saves = list(provider.fetches), lagging.saves
    lagging.show(stale)
    assert reconcile(ports).due == 1
    assert provider.fetches == fetches and lagging.saves == saves
    assert stored(lagging, job_id) == rescheduled


def test_a_due_job_the_index_does_not_list_yet_is_found_once_it_catches_up(
    ports: PipelinePorts, provider: FakeProvider, lagging: LaggingIndexJobStore
) -> None:
    lagging.show(lagging.snapshot())  # taken before the upload: the job is not in the index
    job_id = upload(ports)
    finish(provider, stored(lagging, job_id))
    later(ports, ports.limits.first_check_after)
    assert reconcile(ports).due == 0 and stored(lagging, job_id).state is JobState.SUBMITTED
    lagging.catch_up()
    assert reconcile(ports).finished == 1
    assert stored(lagging, job_id).state is JobState.DONE
