"""An upload costs at most ``max_provider_jobs`` provider jobs (2 by default), however often its
answers and callbacks are lost, and a job-store outage longer than any retry costs no second job."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from bucketscribe.domain.job import PROVIDER_JOBS_EXHAUSTED, AttemptState, Job, JobState
from bucketscribe.domain.profile import Profile
from bucketscribe.domain.transcript import Segment, Transcript
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.complete import CompletionOutcome, complete_callback
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.pipeline.redrive import RedriveOutcome, redrive_job
from bucketscribe.pipeline.submit import UploadOutcome, submit_uploads
from bucketscribe.ports.provider import ProviderError, SubmitItem, SubmitReceipt
from tests.audio import tone_wav
from tests.fakes import FakePorts, FakeProvider, claim_from_callback_url, known

pytestmark = pytest.mark.unit

LOST = ProviderError("SIS.0100", "internal error", retryable=True, maybe_done=True)


def said(words: str) -> Transcript:
    return Transcript(
        provider="sis", duration_ms=1000, segments=[Segment(start_ms=0, end_ms=900, text=words)]
    )


def lost_everything(ports: FakePorts, provider: FakeProvider, key: str = "incoming/lost.wav") -> str:
    """Every answer and every callback lost: run the reconciler until nothing more happens."""
    ports.storage.add("recordings", key, tone_wav(1))
    provider.lose_answer = LOST
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key=key)], ports)
    for _ in range(30):
        job = ports.jobs.get(result.job_id)
        if job.state.is_final:
            break
        ports.clock.now = max(ports.clock.now, known(job.next_check_at)) + timedelta(seconds=1)
        reconcile(ports)
    provider.lose_answer = None
    return known(result.job_id)


def test_lasting_lost_answers_and_callbacks_pay_for_two_jobs_then_fail_naming_them(
    ports: FakePorts, provider: FakeProvider
) -> None:
    job_id = lost_everything(ports, provider)
    job = ports.jobs.get(job_id)
    assert len(provider.tasks_for(job_id)) == ports.limits.max_provider_jobs == 2
    assert job.state is JobState.FAILED and job.error.code == PROVIDER_JOBS_EXHAUSTED
    assert "attempt 1" in job.error.message and "attempt 2" in job.error.message
    assert f"bucketscribe redrive {job_id}" in job.error.message
    assert ports.storage.get("recordings", "transcripts/lost.wav.error.json")


def test_a_late_callback_after_the_cap_still_finishes_the_job(
    ports: FakePorts, provider: FakeProvider
) -> None:
    job_id = lost_everything(ports, provider)
    first_task = provider.tasks_for(job_id)[0]
    provider.finish(first_task, said("the first job's words"))
    items, _ = provider.submissions[0]
    _, claim = claim_from_callback_url(items[0].callback_url)
    completion = complete_callback(claim, lambda: first_task, ports)
    assert completion.outcome is CompletionOutcome.DONE
    assert ports.jobs.get(job_id).state is JobState.DONE
    assert "transcripts/lost.wav.error.json" not in ports.storage.keys("transcripts/")
    assert len(provider.tasks_for(job_id)) == 2


def test_a_redrive_is_the_operators_choice_to_pay_again(ports: FakePorts, provider: FakeProvider) -> None:
    job_id = lost_everything(ports, provider)
    outcome = redrive_job(job_id, ports.jobs, now=ports.clock(), reason="asked for")
    assert outcome.outcome is RedriveOutcome.REDRIVEN
    reconcile(ports)
    job = ports.jobs.get(job_id)
    assert job.state is JobState.SUBMITTED and len(provider.tasks_for(job_id)) == 3


def test_a_job_store_outage_longer_than_the_run_costs_no_second_job(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ports.storage.add("recordings", "incoming/outage.wav", tone_wav(1))
    real_save, real_bind = ports.jobs.save, ports.jobs.bind_task
    down = {"store": False}

    def save(job: Job) -> bool:
        if down["store"]:
            raise ConnectionError("DynamoDB: service unavailable")
        return real_save(job)

    def bind_task(*args: Any, **kwargs: Any) -> Any:
        if down["store"]:
            raise ConnectionError("DynamoDB: service unavailable")
        return real_bind(*args, **kwargs)

    real_submit = provider.submit

    def submit_then_outage(items: Sequence[SubmitItem], profile: Profile) -> list[SubmitReceipt]:
        receipts = real_submit(items, profile)
        down["store"] = True  # the provider accepted; now the job store goes away
        return receipts

    ports.jobs.save, ports.jobs.bind_task = save, bind_task
    provider.submit = submit_then_outage
    sleeps: list[float] = []
    import bucketscribe.pipeline.steps.job_writes as job_writes

    defaults = known(job_writes.with_store_retries.__kwdefaults__)
    original = defaults["sleep"]
    defaults["sleep"] = sleeps.append
    try:
        # The run ends (out of time) while the store is still down.
        (result,) = submit_uploads(
            [ObjectRef(bucket="recordings", key="incoming/outage.wav")],
            ports,
            out_of_time=lambda: len(sleeps) > 12,
        )
    finally:
        defaults["sleep"] = original
    assert result.outcome is UploadOutcome.DEFERRED and len(sleeps) > len(job_writes.STORE_RETRY_DELAYS_S)
    down["store"] = False
    (task,) = provider.tasks_for(result.job_id)
    provider.finish(task, said("paid once"))
    ports.clock.now += ports.limits.claim_lease + timedelta(seconds=1)  # the dead worker's lease ends
    report = reconcile(ports)
    job = ports.jobs.get(result.job_id)
    assert report.resolved == 1 and job.state is JobState.DONE
    assert job.attempts[0].state is AttemptState.ACCEPTED and job.attempts[0].bound_by == "receipt"
    assert provider.tasks_for(result.job_id) == [task]
    assert not any("_receipts/" in key for key in ports.storage.keys("transcripts/"))


def test_attempts_the_providers_listing_shows_nothing_for_cost_nothing_and_do_not_count(
    ports: FakePorts, provider: FakeProvider
) -> None:
    """A 503 that created nothing, proven by the task listing (DashScope's), is not a paid job."""
    provider.can_search_tasks = True
    ports.storage.add("recordings", "incoming/flaky.wav", tone_wav(1))
    provider.submit_error = ProviderError("HTTP.503", "service unavailable", retryable=True, maybe_done=True)
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key="incoming/flaky.wav")], ports)
    for _ in range(3):  # 503 after 503, each resolved from the listing and submitted again at once
        job = ports.jobs.get(result.job_id)
        ports.clock.now = max(ports.clock.now, known(job.next_check_at)) + ports.limits.search_delay
        reconcile(ports)
    provider.submit_error = None
    job = ports.jobs.get(result.job_id)
    ports.clock.now = max(ports.clock.now, known(job.next_check_at)) + ports.limits.search_delay
    reconcile(ports)
    job = ports.jobs.get(result.job_id)
    assert job.state is JobState.SUBMITTED and job.provider_jobs == 1
    # Four 503s (the first submission and three more), none of them counted against the cap.
    assert [a.listed_none for a in job.attempts if a.state is AttemptState.ABANDONED] == [True] * 4
