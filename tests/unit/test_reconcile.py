from datetime import timedelta

import pytest

from bucketscribe.model import JobError, JobState, ObjectRef, Segment, Transcript
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.pipeline.submit import submit_uploads
from bucketscribe.providers.base import ProviderError
from tests.audio import tone_wav

pytestmark = pytest.mark.unit


def submitted(ports, name="a.wav"):
    ports.storage.add("recordings", f"incoming/{name}", tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key=f"incoming/{name}")], ports)
    return ports.jobs.get(result.job_id)


def transcript():
    return Transcript(
        provider="sis", duration_ms=1000, segments=[Segment(start_ms=0, end_ms=900, text="found by polling")]
    )


def test_nothing_is_due_before_the_first_check(ports, provider):
    submitted(ports)
    report = reconcile(ports)
    assert report.due == 0 and provider.fetches == []


def test_a_finished_task_whose_callback_was_lost_is_finished_by_polling(ports, provider):
    job = submitted(ports)
    provider.finish(job.provider_task_id, transcript())
    ports.clock.now += ports.limits.first_check_after
    report = reconcile(ports)
    assert (report.due, report.finished, report.tasks_fetched) == (1, 1, 1)
    assert ports.jobs.get(job.id).state is JobState.DONE
    assert "found by polling" in ports.storage.get("recordings", "transcripts/a.wav.txt").decode()
    assert reconcile(ports).due == 0


def test_pending_tasks_are_checked_again_with_exponential_backoff_up_to_the_cap(ports, provider):
    job = submitted(ports)
    limits = ports.limits
    start = ports.clock.now
    ports.clock.now = start + limits.first_check_after
    intervals = []
    for _ in range(6):
        reconcile(ports)
        current = ports.jobs.get(job.id)
        intervals.append(current.next_check_at - ports.clock.now)
        ports.clock.now = current.next_check_at
    expected = [min(limits.first_check_after * 2**i, limits.max_check_interval) for i in range(6)]
    assert intervals == expected
    assert intervals[0] < intervals[1] < intervals[-1] == limits.max_check_interval
    assert ports.jobs.get(job.id).state is JobState.SUBMITTED


def test_a_job_still_unfinished_at_the_deadline_fails_with_the_reason(ports, provider):
    job = submitted(ports)
    ports.clock.now += ports.limits.job_deadline + timedelta(minutes=1)
    report = reconcile(ports)
    assert report.failed == 1
    failed = ports.jobs.get(job.id)
    assert failed.state is JobState.FAILED and failed.error.code == "PROVIDER_TIMEOUT"
    assert job.provider_task_id in failed.error.message
    assert ports.storage.get("recordings", "transcripts/a.wav.error.json")


def test_a_failed_provider_task_fails_the_job(ports, provider):
    job = submitted(ports)
    provider.fail(job.provider_task_id, JobError(code="SIS.0535", message="Audio format is invalid!"))
    ports.clock.now += ports.limits.first_check_after
    assert reconcile(ports).failed == 1
    assert ports.jobs.get(job.id).error.code == "SIS.0535"


def test_an_unreachable_provider_just_means_later(ports, provider):
    job = submitted(ports)
    ports.clock.now += ports.limits.first_check_after

    def down(task_id):
        raise ProviderError("SIS.UNREACHABLE", "connection refused", retryable=True)

    provider.fetch = down
    report = reconcile(ports)
    assert report.provider_errors == 1 and report.still_pending == 1
    assert ports.jobs.get(job.id).state is JobState.SUBMITTED


def test_jobs_of_one_task_are_fetched_once(ports, provider):
    provider.max_files_per_task = 10
    for name in ("1.wav", "2.wav", "3.wav"):
        ports.storage.add("recordings", f"incoming/{name}", tone_wav(1))
    refs = [ObjectRef(bucket="recordings", key=f"incoming/{n}") for n in ("1.wav", "2.wav", "3.wav")]
    submit_uploads(refs, ports)
    ports.clock.now += ports.limits.first_check_after
    report = reconcile(ports)
    assert (report.due, report.tasks_fetched) == (3, 1)  # one query for the three files of the task


def test_an_upload_never_submitted_fails_at_the_deadline_naming_the_dead_letter_queue(ports, provider):
    provider.submit_error = ProviderError("SIS.0312", "busy", retryable=True)
    ports.storage.add("recordings", "incoming/stuck.wav", tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key="incoming/stuck.wav")], ports)
    ports.clock.now += ports.limits.first_check_after
    assert reconcile(ports).due == 0  # the queue still owns it
    ports.clock.now += ports.limits.job_deadline
    assert reconcile(ports).failed == 1
    failed = ports.jobs.get(result.job_id)
    assert failed.error.code == "NEVER_SUBMITTED" and "dead-letter queue" in failed.error.message
    assert "busy" in failed.error.message


def test_a_push_out_of_time_leaves_the_rest_due_for_the_reconciler(ports, provider):
    from bucketscribe.pipeline.complete import CompletionOutcome, complete_task

    provider.max_files_per_task = 10
    provider.accepts_callback_url = False  # push-style: the task's files are recorded at submit
    names = [f"{i}.wav" for i in range(4)]
    for name in names:
        ports.storage.add("recordings", f"incoming/{name}", tone_wav(1))
    submit_uploads([ObjectRef(bucket="recordings", key=f"incoming/{n}") for n in names], ports)
    (task,) = {job.provider_task_id for job in ports.jobs.jobs.values()}
    provider.finish(task, transcript())
    budget = iter([False, False, True, True])
    done = complete_task("sis", task, ports, out_of_time=lambda: next(budget))
    outcomes = sorted(c.outcome.value for c in done)
    assert outcomes == ["DEFERRED", "DEFERRED", "DONE", "DONE"]
    deferred = [c.job_id for c in done if c.outcome is CompletionOutcome.DEFERRED]
    assert all(ports.jobs.get(j).next_check_at == ports.clock.now for j in deferred)
    report = reconcile(ports)
    assert (report.tasks_fetched, report.finished) == (1, 2)
    assert {job.state for job in ports.jobs.jobs.values()} == {JobState.DONE}
    # A repeated push for the task writes nothing and does not even ask the provider.
    fetches = len(provider.fetches)
    again = complete_task("sis", task, ports)
    assert {c.outcome for c in again} == {CompletionOutcome.ALREADY_FINAL} and len(
        provider.fetches
    ) == fetches


def test_a_reconcile_run_out_of_time_leaves_jobs_due(ports, provider):
    for name in ("1.wav", "2.wav"):
        job = submitted(ports, name)
        provider.finish(job.provider_task_id, transcript())
    ports.clock.now += ports.limits.first_check_after
    report = reconcile(ports, out_of_time=lambda: True)
    assert (report.due, report.finished, report.left_for_next_run) == (2, 0, 2)
    assert reconcile(ports).finished == 2
