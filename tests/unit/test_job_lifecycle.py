"""The job's state machine, on the model: which transitions each state allows, and what they record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bucketscribe.domain.job import AttemptState, InvalidTransition, Job, JobError, JobState
from bucketscribe.domain.upload import ObjectRef

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
ME = "worker-1"
BUSY = JobError(code="SIS.0312", message="busy", retryable=True)
LOST = JobError(code="SIS.UNREACHABLE", message="read timed out", retryable=True)


def new_job() -> Job:
    ref = ObjectRef(bucket="b", key="incoming/a.wav", etag="e1", size=10)
    return Job.for_upload(ref, profile="default", provider="sis", model=None, now=T0)


def submitting(job: Job | None = None, at: datetime = T0) -> Job:
    job = job or new_job()
    return job.claim(at, until=at + LEASE, owner=ME).start_attempt(
        at, lease_until=at + LEASE, owner=ME, provider_file="f"
    )


def test_every_transition_bumps_the_version_so_stale_copies_cannot_be_written() -> None:
    job = new_job()
    claimed = job.claim(T0, until=T0 + LEASE, owner=ME)
    started = claimed.start_attempt(T0, lease_until=T0 + LEASE, owner=ME, provider_file="f")
    assert [job.version, claimed.version, started.version] == [0, 1, 2]
    assert started.state is JobState.SUBMITTING and started.current_attempt.state is AttemptState.IN_FLIGHT


def test_a_worker_whose_lease_ran_out_cannot_carry_on_over_the_one_that_took_over() -> None:
    mine = new_job().claim(T0, until=T0 + LEASE, owner=ME)
    later = T0 + LEASE + timedelta(seconds=1)
    theirs = mine.claim(later, until=later + LEASE, owner="worker-2")
    with pytest.raises(InvalidTransition):
        theirs.start_attempt(later, lease_until=later + LEASE, owner=ME)
    assert (
        theirs.start_attempt(later, lease_until=later + LEASE, owner="worker-2").state is JobState.SUBMITTING
    )


def test_a_claimed_job_cannot_be_claimed_again_until_the_lease_runs_out() -> None:
    claimed = new_job().claim(T0, until=T0 + LEASE, owner=ME)
    with pytest.raises(InvalidTransition):
        claimed.claim(T0 + timedelta(minutes=1), until=T0 + LEASE * 2, owner="worker-2")
    assert (
        claimed.claim(T0 + LEASE + timedelta(seconds=1), until=T0 + LEASE * 3, owner="worker-2").claimed_until
        == T0 + LEASE * 3
    )


def test_a_bound_task_makes_the_job_submitted_and_remembers_how_it_was_found() -> None:
    job = submitting().bind_task(
        T0, number=1, task_id="t1", provider_file="f", check_at=T0 + LEASE, bound_by="answer"
    )
    assert job.state is JobState.SUBMITTED and job.provider_task_id == "t1"
    assert job.current_attempt.bound_by == "answer" and job.claimed_until is None


def test_a_refused_attempt_goes_back_to_accepted_with_the_reason_and_a_retry_time() -> None:
    job = submitting().attempt_refused(T0, BUSY, retry_at=T0 + LEASE)
    assert job.state is JobState.ACCEPTED and job.error == BUSY and job.next_check_at == T0 + LEASE
    assert job.current_attempt.state is AttemptState.REFUSED
    assert job.next_attempt_reason == "retry after SIS.0312"


def test_an_uncertain_attempt_stays_submitting_and_cannot_start_another() -> None:
    job = submitting().attempt_uncertain(T0, LOST, check_at=T0 + LEASE)
    assert job.state is JobState.SUBMITTING and job.current_attempt.state is AttemptState.UNCERTAIN
    with pytest.raises(InvalidTransition):
        job.start_attempt(T0, lease_until=T0 + LEASE, owner=ME)


def test_an_abandoned_attempt_can_still_bind_its_task_when_it_surfaces_late() -> None:
    uncertain = submitting().attempt_uncertain(T0, LOST, check_at=T0)
    abandoned = uncertain.abandon_attempt(T0 + timedelta(hours=1), why="no callback")
    second = abandoned.claim(T0 + timedelta(hours=1), until=T0 + timedelta(hours=2), owner=ME).start_attempt(
        T0 + timedelta(hours=1), lease_until=T0 + timedelta(hours=2), owner=ME
    )
    assert [a.state for a in second.attempts] == [AttemptState.ABANDONED, AttemptState.IN_FLIGHT]
    late = second.bind_task(
        T0 + timedelta(hours=2), number=1, task_id="t1", provider_file="f", check_at=T0, bound_by="callback"
    )
    assert late.state is JobState.SUBMITTED and late.attempt(1).task_id == "t1"
    assert late.task_ids() == {"t1"}


def test_an_attempt_in_flight_under_a_live_lease_cannot_be_abandoned() -> None:
    job = submitting()
    with pytest.raises(InvalidTransition):
        job.abandon_attempt(T0 + timedelta(minutes=1), why="impatient")
    assert (
        job.abandon_attempt(T0 + LEASE + timedelta(seconds=1), why="worker died").state is JobState.ACCEPTED
    )


def test_done_after_a_deadline_failure_wins_but_not_after_other_failures() -> None:
    bound = submitting().bind_task(
        T0, number=1, task_id="t1", provider_file="f", check_at=T0, bound_by="answer"
    )
    timed_out = bound.fail(T0, JobError(code="PROVIDER_TIMEOUT", message="too slow"))
    assert timed_out.accepts_late_result
    finishing = timed_out.begin_finishing(T0, until=T0 + LEASE, owner=ME)
    assert finishing.finish(T0, outputs=["x.json"], owner=ME).state is JobState.DONE
    refused = bound.fail(T0, JobError(code="SIS.0535", message="Audio format is invalid!"))
    with pytest.raises(InvalidTransition):
        refused.finish(T0, outputs=["x.json"], owner=ME)


def test_only_one_worker_at_a_time_may_write_the_outputs() -> None:
    bound = submitting().bind_task(
        T0, number=1, task_id="t1", provider_file="f", check_at=T0, bound_by="answer"
    )
    finishing = bound.begin_finishing(T0, until=T0 + LEASE, owner=ME)
    with pytest.raises(InvalidTransition):
        finishing.begin_finishing(T0 + timedelta(seconds=1), until=T0 + LEASE, owner="worker-2")


def test_an_expired_result_goes_back_for_a_new_attempt() -> None:
    bound = submitting().bind_task(
        T0, number=1, task_id="t1", provider_file="f", check_at=T0, bound_by="answer"
    )
    again = bound.result_expired(T0, JobError(code="TASK_UNKNOWN", message="gone"))
    assert again.state is JobState.ACCEPTED and again.attempts_in(AttemptState.EXPIRED) == 1
    assert again.provider_task_id is None


def test_a_redrive_needs_a_finished_job_and_counts_its_deadline_afresh() -> None:
    bound = submitting().bind_task(
        T0, number=1, task_id="t1", provider_file="f", check_at=T0, bound_by="answer"
    )
    with pytest.raises(InvalidTransition):
        bound.redrive(T0, reason="operator")
    failed = bound.fail(T0, BUSY)
    later = T0 + timedelta(days=2)
    redriven = failed.redrive(later, reason="provider fixed")
    assert redriven.state is JobState.ACCEPTED and redriven.redrives == 1 and redriven.error is None
    assert redriven.deadline_from == later
    started = redriven.claim(later, until=later + LEASE, owner=ME).start_attempt(
        later, lease_until=later + LEASE, owner=ME
    )
    assert (
        started.current_attempt.number == 2 and started.current_attempt.reason == "re-driven: provider fixed"
    )


def test_final_jobs_refuse_every_change_but_a_late_result_or_a_redrive() -> None:
    done = (
        submitting()
        .bind_task(T0, number=1, task_id="t1", provider_file="f", check_at=T0, bound_by="answer")
        .begin_finishing(T0, until=T0 + LEASE, owner=ME)
        .finish(T0, outputs=[], owner=ME)
    )
    for change in (
        lambda j: j.fail(T0, BUSY),
        lambda j: j.check_later(T0, at=T0),
        lambda j: j.claim(T0, until=T0 + LEASE, owner=ME),
        lambda j: j.begin_finishing(T0, until=T0 + LEASE, owner=ME),
    ):
        with pytest.raises(InvalidTransition):
            change(done)


def test_a_worker_binding_its_own_attempt_after_a_late_one_ends_its_lease_and_may_write_the_outputs() -> None:
    # Attempt 1 was abandoned (its worker seemed dead); attempt 2 runs under worker-2's lease.
    uncertain = submitting().attempt_uncertain(T0, LOST, check_at=T0)
    abandoned = uncertain.abandon_attempt(T0 + timedelta(hours=1), why="worker stopped")
    at = T0 + timedelta(hours=1)
    second = abandoned.claim(at, until=at + LEASE, owner="worker-2").start_attempt(
        at, lease_until=at + LEASE, owner="worker-2"
    )
    # Attempt 1's task surfaces late: bound, but worker-2's lease stands.
    late = second.bind_task(at, number=1, task_id="t1", provider_file=None, check_at=at, bound_by="stream")
    assert late.state is JobState.SUBMITTED and late.claimed_by == "worker-2"
    with pytest.raises(InvalidTransition):
        late.begin_finishing(at, until=at + LEASE, owner=ME)
    # Someone else's bind of attempt 2 keeps the lease; worker-2's own ends it, so it can finish.
    kept = late.bind_task(at, number=2, task_id="t2", provider_file=None, check_at=at, bound_by="stream")
    assert kept.claimed_by == "worker-2"
    own = late.bind_task(
        at, number=2, task_id="t2", provider_file=None, check_at=at, bound_by="stream", owner="worker-2"
    )
    assert own.claimed_by is None and own.task_ids() == {"t1", "t2"}
    assert own.begin_finishing(at, until=at + LEASE, owner="worker-2").claimed_by == "worker-2"
