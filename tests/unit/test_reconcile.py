from datetime import datetime, timedelta

import pytest

from bucketscribe.domain.job import AttemptState, Job, JobError, JobState
from bucketscribe.domain.transcript import Segment, Transcript
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.pipeline.submit import submit_uploads
from bucketscribe.ports.provider import ProviderError, TaskResult, TaskSearch
from bucketscribe.ports.storage import ObjectInfo
from tests.audio import tone_wav
from tests.fakes import FakePorts, FakeProvider, known

pytestmark = pytest.mark.unit


def submitted(ports: FakePorts, name: str = "a.wav") -> Job:
    ports.storage.add("recordings", f"incoming/{name}", tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key=f"incoming/{name}")], ports)
    job = ports.jobs.get(result.job_id)
    assert job is not None, result
    return job


def transcript() -> Transcript:
    return Transcript(
        provider="sis", duration_ms=1000, segments=[Segment(start_ms=0, end_ms=900, text="found by polling")]
    )


def test_nothing_is_due_before_the_first_check(ports: FakePorts, provider: FakeProvider) -> None:
    submitted(ports)
    report = reconcile(ports)
    assert report.due == 0 and provider.fetches == []


def test_a_finished_task_whose_callback_was_lost_is_finished_by_polling(
    ports: FakePorts, provider: FakeProvider
) -> None:
    job = submitted(ports)
    provider.finish(job.provider_task_id, transcript())
    ports.clock.now += ports.limits.first_check_after
    report = reconcile(ports)
    assert (report.due, report.finished, report.tasks_fetched) == (1, 1, 1)
    assert ports.jobs.get(job.id).state is JobState.DONE
    assert "found by polling" in ports.storage.get("recordings", "transcripts/a.wav.txt").decode()
    assert reconcile(ports).due == 0


def test_pending_tasks_are_checked_again_with_exponential_backoff_up_to_the_cap(
    ports: FakePorts, provider: FakeProvider
) -> None:
    job = submitted(ports)
    limits = ports.limits
    start = ports.clock.now
    ports.clock.now = start + limits.first_check_after
    intervals = []
    for _ in range(6):
        reconcile(ports)
        current = ports.jobs.get(job.id)
        intervals.append(known(current.next_check_at) - ports.clock.now)
        ports.clock.now = known(current.next_check_at)
    expected = [min(limits.first_check_after * 2**i, limits.max_check_interval) for i in range(6)]
    assert intervals == expected
    assert intervals[0] < intervals[1] < intervals[-1] == limits.max_check_interval
    assert ports.jobs.get(job.id).state is JobState.SUBMITTED


def test_a_job_still_unfinished_at_the_deadline_fails_with_the_reason(
    ports: FakePorts, provider: FakeProvider
) -> None:
    job = submitted(ports)
    ports.clock.now += ports.limits.job_deadline + timedelta(minutes=1)
    report = reconcile(ports)
    assert report.failed == 1
    failed = ports.jobs.get(job.id)
    assert failed.state is JobState.FAILED and failed.error.code == "PROVIDER_TIMEOUT"
    assert job.provider_task_id in failed.error.message
    assert ports.storage.get("recordings", "transcripts/a.wav.error.json")


def test_a_failed_provider_task_fails_the_job(ports: FakePorts, provider: FakeProvider) -> None:
    job = submitted(ports)
    provider.fail(job.provider_task_id, JobError(code="SIS.0535", message="Audio format is invalid!"))
    ports.clock.now += ports.limits.first_check_after
    assert reconcile(ports).failed == 1
    assert ports.jobs.get(job.id).error.code == "SIS.0535"


def test_an_unreachable_provider_just_means_later(ports: FakePorts, provider: FakeProvider) -> None:
    job = submitted(ports)
    ports.clock.now += ports.limits.first_check_after

    def down(task_id: str) -> TaskResult:
        raise ProviderError("SIS.UNREACHABLE", "connection refused", retryable=True)

    provider.fetch = down
    report = reconcile(ports)
    assert report.provider_errors == 1 and report.still_pending == 1
    assert ports.jobs.get(job.id).state is JobState.SUBMITTED


def test_jobs_of_one_task_are_fetched_once(ports: FakePorts, provider: FakeProvider) -> None:
    provider.max_files_per_task = 10
    for name in ("1.wav", "2.wav", "3.wav"):
        ports.storage.add("recordings", f"incoming/{name}", tone_wav(1))
    refs = [ObjectRef(bucket="recordings", key=f"incoming/{n}") for n in ("1.wav", "2.wav", "3.wav")]
    submit_uploads(refs, ports)
    ports.clock.now += ports.limits.first_check_after
    report = reconcile(ports)
    assert (report.due, report.tasks_fetched) == (3, 1)  # one query for the three files of the task


def test_an_upload_never_submitted_fails_at_the_deadline_with_the_last_reason(
    ports: FakePorts, provider: FakeProvider
) -> None:
    provider.submit_error = ProviderError("SIS.0312", "busy", retryable=True)
    ports.storage.add("recordings", "incoming/stuck.wav", tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key="incoming/stuck.wav")], ports)
    ports.clock.now += ports.limits.job_deadline + timedelta(seconds=1)
    assert reconcile(ports).failed == 1
    failed = ports.jobs.get(result.job_id)
    assert failed.error.code == "NEVER_SUBMITTED" and "busy" in failed.error.message
    assert "bucketscribe redrive" in failed.error.message
    assert ports.storage.get("recordings", "transcripts/stuck.wav.error.json")


def test_a_job_a_worker_is_still_submitting_is_not_failed_or_taken_over(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ports.storage.add("recordings", "incoming/slow.wav", tone_wav(1))
    ref = known(ports.storage.head("recordings", "incoming/slow.wav"))
    source = ObjectRef(bucket="recordings", key="incoming/slow.wav", etag=ref.etag, size=ref.size)
    now = ports.clock()
    # A stored job under a worker's claim (a re-drive being prepared: a long video's audio being
    # extracted, say); a new upload's job is not stored at all until its attempt starts.
    job = Job.for_upload(source, profile="default", provider="sis", model=None, now=now).claim(
        now, until=now + ports.limits.claim_lease, owner="another-worker"
    )
    assert ports.jobs.create(job)
    ports.clock.now += ports.limits.claim_lease / 2
    report = reconcile(ports)
    assert report.failed == 0 and provider.submissions == []
    current = ports.jobs.get(job.id)
    assert current.state is JobState.ACCEPTED and current.next_check_at == current.claimed_until


def test_a_dead_workers_submission_is_resolved_from_the_providers_listing(
    ports: FakePorts, provider: FakeProvider
) -> None:
    provider.can_search_tasks = True
    provider.max_files_per_task = 10
    provider.lose_answer = ProviderError("HTTP.500", "InternalError", retryable=True, maybe_done=True)
    ports.storage.add("recordings", "incoming/batch.wav", tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key="incoming/batch.wav")], ports)
    provider.lose_answer = None
    (task_id,) = provider.tasks_for(result.job_id)
    # The listing only shows a task's files once it has finished: until then, wait.
    ports.clock.now += ports.limits.search_delay
    report = reconcile(ports)
    assert (report.resolved, report.abandoned, report.still_pending) == (0, 0, 1)
    provider.finish(task_id, transcript())
    ports.clock.now = known(known(ports.jobs.get(result.job_id)).next_check_at)
    report = reconcile(ports)
    assert (report.resolved, report.finished, report.submitted) == (1, 1, 0)
    done = ports.jobs.get(result.job_id)
    assert done.state is JobState.DONE and done.attempts[0].bound_by == "listing"
    assert provider.tasks_for(result.job_id) == [task_id]


def test_a_submission_the_provider_never_received_is_made_again_once_the_listing_shows_none(
    ports: FakePorts, provider: FakeProvider
) -> None:
    provider.can_search_tasks = True
    ports.storage.add("recordings", "incoming/never-arrived.wav", tone_wav(1))
    provider.submit_error = ProviderError("HTTP.503", "reset", retryable=True, maybe_done=True)
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key="incoming/never-arrived.wav")], ports)
    provider.submit_error = None
    ports.clock.now += ports.limits.search_delay
    report = reconcile(ports)
    assert (report.abandoned, report.submitted) == (1, 1)
    job = ports.jobs.get(result.job_id)
    assert [a.state for a in job.attempts] == [AttemptState.ABANDONED, AttemptState.ACCEPTED]
    assert len(provider.submissions) == 1


def test_without_a_listing_the_attempts_callback_is_awaited_for_the_evidence_wait(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ports.storage.add("recordings", "incoming/sis.wav", tone_wav(1))
    provider.lose_answer = ProviderError("SIS.UNREACHABLE", "timed out", retryable=True, maybe_done=True)
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key="incoming/sis.wav")], ports)
    provider.lose_answer = None
    ports.clock.now += ports.limits.search_delay
    assert reconcile(ports).due == 0  # nothing to do before the wait is over
    ports.clock.now = known(known(ports.jobs.get(result.job_id)).next_check_at)
    assert reconcile(ports).abandoned == 1
    assert len(provider.tasks_for(result.job_id)) == 2  # the documented residual: answer and callback lost


def test_a_push_out_of_time_leaves_the_rest_due_for_the_reconciler(
    ports: FakePorts, provider: FakeProvider
) -> None:
    from bucketscribe.pipeline.complete import CompletionOutcome, complete_task

    provider.max_files_per_task = 10
    provider.accepts_callback_url = False  # push-style: the task's files are recorded at submit
    names = [f"{i}.wav" for i in range(4)]
    for name in names:
        ports.storage.add("recordings", f"incoming/{name}", tone_wav(1))
    submit_uploads([ObjectRef(bucket="recordings", key=f"incoming/{n}") for n in names], ports)
    (task,) = {known(job.provider_task_id) for job in ports.jobs.jobs.values()}
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


def test_a_reconcile_run_out_of_time_leaves_jobs_due(ports: FakePorts, provider: FakeProvider) -> None:
    for name in ("1.wav", "2.wav"):
        job = submitted(ports, name)
        provider.finish(job.provider_task_id, transcript())
    ports.clock.now += ports.limits.first_check_after
    report = reconcile(ports, out_of_time=lambda: True)
    assert (report.due, report.finished, report.left_for_next_run) == (2, 0, 2)
    assert reconcile(ports).finished == 2


def test_one_jobs_storage_error_does_not_abort_the_run(ports: FakePorts, provider: FakeProvider) -> None:
    broken = submitted(ports, "broken.wav")
    fine = submitted(ports, "fine.wav")
    real_put = ports.storage.put

    def put(bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        if key.startswith("transcripts/broken.wav"):
            raise ConnectionError("S3 refused the write")
        real_put(bucket, key, body, content_type=content_type)

    ports.storage.put = put
    ports.clock.now += ports.limits.job_deadline + timedelta(minutes=1)
    report = reconcile(ports)
    assert ports.jobs.get(fine.id).state is JobState.FAILED
    assert ports.storage.head("recordings", "transcripts/fine.wav.error.json") is not None
    assert report.units_failed == 1 and ports.jobs.get(broken.id).state is JobState.FAILED


def refused_now(ports: FakePorts, provider: FakeProvider, *names: str) -> list[Job]:
    """Uploads the provider refused for now (busy): ACCEPTED jobs due for another attempt."""
    provider.submit_error = ProviderError("SIS.0312", "busy", retryable=True)
    jobs = [submitted(ports, name) for name in names]
    provider.submit_error = None
    ports.clock.now += ports.limits.submit_retry_after
    return jobs


def test_one_due_jobs_storage_error_does_not_stop_the_others_being_submitted(
    ports: FakePorts, provider: FakeProvider
) -> None:
    sealed, fine = refused_now(ports, provider, "sealed.wav", "fine.wav")
    real_head = ports.storage.head

    def head(bucket: str, key: str) -> ObjectInfo | None:
        if "sealed" in key:
            raise PermissionError("An error occurred (403) when calling the HeadObject operation: Forbidden")
        return real_head(bucket, key)

    ports.storage.head = head
    report = reconcile(ports)
    assert ports.jobs.get(fine.id).state is JobState.SUBMITTED and report.submitted == 1
    assert ports.jobs.get(sealed.id).state is JobState.ACCEPTED and report.units_failed == 1


def test_an_unexpected_listing_error_fails_its_cluster_alone(
    ports: FakePorts, provider: FakeProvider
) -> None:
    provider.can_search_tasks = True
    provider.lose_answer = ProviderError("HTTP.503", "answer lost", retryable=True, maybe_done=True)
    early = submitted(ports, "early.wav")
    ports.clock.now += timedelta(hours=1)  # far apart: two clusters, two listings
    late = submitted(ports, "late.wav")
    provider.lose_answer = None
    for task in {*provider.tasks_for(early.id), *provider.tasks_for(late.id)}:
        provider.finish(task, transcript())
    ports.clock.now += ports.limits.search_delay + timedelta(seconds=1)
    real_search = provider._search_tasks

    def search(start: datetime, end: datetime, files: set[str]) -> TaskSearch:
        if start < early.attempts[0].started_at + timedelta(minutes=30):
            raise RuntimeError("the listing's reply could not be parsed")
        return real_search(start, end, files)

    provider._search_tasks = search
    report = reconcile(ports)
    assert report.units_failed == 1 and report.resolved == 1
    assert ports.jobs.get(late.id).state is JobState.DONE
    assert ports.jobs.get(early.id).state is JobState.SUBMITTING


def test_a_job_store_that_cannot_list_due_jobs_ends_the_run_without_raising(
    ports: FakePorts, provider: FakeProvider
) -> None:
    def due(now: datetime, *, limit: int) -> list[Job]:
        raise ConnectionError("DynamoDB endpoint unreachable")

    ports.jobs.due = due
    report = reconcile(ports)
    assert report.units_failed == 1 and report.due == 0


def test_one_reconciler_run_at_a_time_a_second_does_nothing_until_the_first_ends_or_dies(
    ports: FakePorts, provider: FakeProvider
) -> None:
    """No reserved concurrency on a fresh account: the runs take a lease in the job store instead."""
    job = submitted(ports)
    provider.finish(job.provider_task_id, transcript())
    ports.clock.now += ports.limits.first_check_after
    # A run that is still going (or died without giving the lease up) holds it.
    assert ports.jobs.take_lease(
        "reconciler", owner="a-running-run", until=ports.clock.now + timedelta(minutes=5), now=ports.clock.now
    )
    blocked = reconcile(ports)
    assert blocked.skipped and blocked.due == 0 and provider.fetches == []
    # Its time runs out: the next run carries on, and gives the lease up when it ends.
    ports.clock.now += timedelta(minutes=5)
    assert reconcile(ports).finished == 1
    assert reconcile(ports).skipped is False


def test_a_run_gives_its_lease_up_through_a_short_job_store_outage(
    ports: FakePorts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lease left behind keeps every later run out for the run's whole time (found by the e2e
    suite: a 4 s outage at a run's end blocked the reconciler for minutes)."""
    end_lease = ports.jobs.end_lease
    refusals = iter([ConnectionError("job store down"), ConnectionError("job store down")])

    def flaky_end(name: str, *, owner: str) -> None:
        refused = next(refusals, None)
        if refused is not None:
            raise refused
        end_lease(name, owner=owner)

    monkeypatch.setattr(ports.jobs, "end_lease", flaky_end)
    assert reconcile(ports, time_left=lambda: timedelta(minutes=4)).skipped is False
    assert ports.jobs.leases == {}  # given up on the third try
    assert reconcile(ports).skipped is False


def test_a_backlog_larger_than_one_listing_is_worked_through_in_one_run(
    ports: FakePorts, provider: FakeProvider
) -> None:
    """The run lists ``limit`` due jobs at a time and goes on while there are more (and it has
    time): a backlog drains at the run's pace, not ``limit`` jobs per schedule."""
    jobs = [submitted(ports, f"backlog-{index:02d}.wav") for index in range(25)]
    for job in jobs:
        provider.finish(job.provider_task_id, transcript())
    ports.clock.now += ports.limits.first_check_after
    report = reconcile(ports, limit=10)
    assert report.finished == 25 and report.due == 25 and report.tasks_fetched == 25
    assert {ports.jobs.get(job.id).state for job in jobs} == {JobState.DONE}


def test_a_run_out_of_time_leaves_the_rest_of_the_backlog_for_the_next(
    ports: FakePorts, provider: FakeProvider
) -> None:
    jobs = [submitted(ports, f"late-{index:02d}.wav") for index in range(25)]
    for job in jobs:
        provider.finish(job.provider_task_id, transcript())
    ports.clock.now += ports.limits.first_check_after
    rounds = iter([False] * 12)  # time for the first listing's work only
    first = reconcile(ports, limit=10, out_of_time=lambda: next(rounds, True))
    assert 0 < first.finished <= 10
    second = reconcile(ports, limit=10)
    assert first.finished + second.finished == 25
