"""A provider whose quota is full: uploads wait in the queue for capacity instead of failing after
a number of refusals, are sent as capacity comes back, never more at once than the quota, and
the wait has its own bound."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bucketscribe.domain.job import Job, JobState
from bucketscribe.domain.transcript import Segment, Transcript
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.complete import CompletionOutcome, complete_callback
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.pipeline.submit import UploadOutcome, submit_uploads
from bucketscribe.ports.provider import TaskStatus
from tests.audio import tone_wav
from tests.fakes import FakePorts, FakeProvider, claim_from_callback_url

pytestmark = pytest.mark.unit


def uploads(ports: FakePorts, count: int) -> list[ObjectRef]:
    refs = []
    for index in range(count):
        key = f"incoming/burst/{index:03d}.wav"
        ports.storage.add("recordings", key, tone_wav(1))
        refs.append(ObjectRef(bucket="recordings", key=key))
    return refs


def finish_what_is_running(provider: FakeProvider) -> int:
    running = [task for task, result in provider.results.items() if result.status is TaskStatus.PENDING]
    for task in running:
        provider.finish(
            task,
            Transcript(
                provider="sis", duration_ms=1000, segments=[Segment(start_ms=0, end_ms=900, text=task)]
            ),
        )
    return len(running)


def test_a_burst_larger_than_the_quota_drains_with_none_failed_and_never_more_at_once(
    ports: FakePorts, provider: FakeProvider
) -> None:
    provider.capacity = 3
    results = submit_uploads(uploads(ports, 20), ports)
    assert [r.outcome for r in results].count(UploadOutcome.SUBMITTED) == 3
    assert [r.outcome for r in results].count(UploadOutcome.WAITING) == 17
    # A refusal says the quota is full: the rest of the batch is queued without asking again
    # (only the uploads already on their way, side by side, when it came are turned away too).
    assert 1 <= provider.turned_away <= ports.limits.side_by_side
    for _ in range(40):  # the provider finishes what runs; each reconcile run sends what fits
        finish_what_is_running(provider)
        ports.clock.now += ports.limits.first_check_after
        reconcile(ports)
        if all(job.state.is_final for job in ports.jobs.jobs.values()):
            break
    states = [job.state for job in ports.jobs.jobs.values()]
    assert states == [JobState.DONE] * 20
    assert provider.most_in_flight <= 3
    # Waiting left no attempt behind: each upload has exactly the one that was sent.
    assert all(len(job.attempts) == 1 for job in ports.jobs.jobs.values())
    assert max(job.capacity_waits for job in ports.jobs.jobs.values()) >= 1


def test_waiting_for_capacity_is_not_a_refusal_that_counts_toward_never_submitted(
    ports: FakePorts, provider: FakeProvider
) -> None:
    provider.capacity = 0  # full for longer than max_submit_attempts refusals would last
    (result,) = submit_uploads(uploads(ports, 1), ports)
    assert result.outcome is UploadOutcome.WAITING
    for _ in range(ports.limits.max_submit_attempts + 4):
        ports.clock.now += ports.limits.max_check_interval
        reconcile(ports)
    job = ports.jobs.get(result.job_id)
    assert job.state is JobState.ACCEPTED and job.attempts == [] and job.error.code == "SIS.0312"
    assert job.capacity_waits >= ports.limits.max_submit_attempts
    provider.capacity = None
    ports.clock.now += ports.limits.max_check_interval
    reconcile(ports)
    assert ports.jobs.get(result.job_id).state is JobState.SUBMITTED


def test_a_wait_longer_than_its_bound_fails_the_upload_naming_the_quota(
    ports: FakePorts, provider: FakeProvider
) -> None:
    provider.capacity = 0
    (result,) = submit_uploads(uploads(ports, 1), ports)
    ports.clock.now += ports.limits.capacity_wait + timedelta(minutes=1)
    reconcile(ports)
    job = ports.jobs.get(result.job_id)
    assert job.state is JobState.FAILED and job.error.code == "CAPACITY_WAIT_EXCEEDED"
    assert "quota" in job.error.message and "redrive" in job.error.message
    assert (
        "CAPACITY_WAIT_EXCEEDED"
        in ports.storage.get("recordings", "transcripts/burst/000.wav.error.json").decode()
    )


def test_a_task_of_the_queue_that_ends_hands_its_place_to_the_next_upload_at_once(
    ports: FakePorts, provider: FakeProvider
) -> None:
    """Without it, a place freed between two reconciler runs stays empty until the next one: a
    burst drains at the schedule's pace instead of the quota's (bench/scale.py)."""
    provider.capacity = 1
    results = submit_uploads(uploads(ports, 3), ports)
    assert [r.outcome for r in results] == [UploadOutcome.SUBMITTED] + [UploadOutcome.WAITING] * 2
    # The first to end never waited: its place waits for the reconciler, which sends one.
    finish_what_is_running(provider)
    ports.clock.now += ports.limits.first_check_after
    reconcile(ports)
    submitted = [job for job in ports.jobs.jobs.values() if job.state is JobState.SUBMITTED]
    assert len(submitted) == 1 and submitted[0].capacity_waits >= 1
    # That one came from the queue: its callback hands its place on, with no reconciler run.
    (task,) = [t for t, r in provider.results.items() if r.status is TaskStatus.PENDING]
    finish_what_is_running(provider)
    items, _ = provider.submissions[-1]
    _, claim = claim_from_callback_url(items[0].callback_url)
    completion = complete_callback(claim, lambda: task, ports)
    assert completion.outcome is CompletionOutcome.DONE
    states = sorted(job.state for job in ports.jobs.jobs.values())
    assert states == sorted([JobState.DONE, JobState.DONE, JobState.SUBMITTED]), states
    assert provider.most_in_flight == 1
    # A repeated callback of a job already final hands nothing on again.
    submissions = len(provider.submissions)
    assert complete_callback(claim, lambda: task, ports).outcome is CompletionOutcome.ALREADY_FINAL
    assert len(provider.submissions) == submissions


def test_a_provider_never_at_its_quota_pays_nothing_for_the_queue(
    ports: FakePorts, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    (result,) = submit_uploads(uploads(ports, 1), ports)
    finish_what_is_running(provider)
    items, _ = provider.submissions[-1]
    _, claim = claim_from_callback_url(items[0].callback_url)
    looked: list[datetime] = []
    due = ports.jobs.due

    def counted_due(now: datetime, *, limit: int) -> list[Job]:
        looked.append(now)
        return due(now, limit=limit)

    monkeypatch.setattr(ports.jobs, "due", counted_due)
    assert complete_callback(claim, lambda: None, ports).outcome is CompletionOutcome.DONE
    assert ports.jobs.get(result.job_id).capacity_waits == 0
    assert looked == []  # no query of the queue for a job that never waited
