"""Use case: carry every unfinished job on, so no upload is ever left without an answer.

Runs on a schedule. It reads only the jobs that are due (an index on open state + next-check
time, never a table scan; the index may lag, so each job is re-read before acting) and:

- ACCEPTED (refused before, a dead worker's, a re-drive, an expired result): submits it again;
- SUBMITTING whose worker died or whose answer was lost: resolves the attempt from evidence —
  the provider's listing where it has one, else the attempt's callback awaited for a bounded
  time — binding the task found, or abandoning the attempt and submitting anew;
- SUBMITTED: asks the provider once per task (within its query rate), finishes what is finished
  and backs off exponentially on what is not;
- anything past its deadline: FAILED with the reason and ``<key>.error.json``.

It also drains the dead-letter queue: notifications that failed every delivery are tried once
more, and an upload that still cannot be accepted gets a FAILED job and an error report.

Every unit of work (a dead letter, a job, a provider task) is handled on its own: one that raises
is logged and counted (``units_failed``, the ``ReconcilerUnitsFailed`` metric), looked at again
later, and the run goes on — no message and no job can stop the reconciler for the others.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from bucketscribe.domain.job import Job, JobError, JobState, StreamMetrics
from bucketscribe.pipeline.context import PipelinePorts, TimeLeft
from bucketscribe.pipeline.steps.attempt import NEVER_SUBMITTED
from bucketscribe.pipeline.steps.dead_letters import drain_dead_letters
from bucketscribe.pipeline.steps.evidence import resolve_uncertain
from bucketscribe.pipeline.steps.failures import fail_job
from bucketscribe.pipeline.steps.finish import CompletionOutcome, fetch_task, finish_job
from bucketscribe.pipeline.steps.intake import UploadOutcome
from bucketscribe.pipeline.steps.job_writes import apply, describe_error, new_owner
from bucketscribe.pipeline.steps.notify import DeliveryReport, deliver_due
from bucketscribe.pipeline.steps.parts import PartsOutcome, check_parts
from bucketscribe.pipeline.steps.side_by_side import side_by_side
from bucketscribe.pipeline.steps.submission import continue_accepted
from bucketscribe.ports.provider import ProviderError, TaskResult

logger = Logger(child=True)


# The lease one reconciler run holds (``JobStore.take_lease``), and for how long when the run's
# own time is not known.
RUN_LEASE = "reconciler"
RUN_LEASE_TIME = timedelta(minutes=5)
# How long a run's end keeps trying to give its lease up through a job-store outage.
LEASE_RELEASE_RETRY_S = 30.0
# Rounds of due jobs one run works through at most (each of up to ``limit`` jobs).
MAX_ROUNDS = 50


class ReconcileReport(BaseModel):
    due: int = 0
    tasks_fetched: int = 0
    finished: int = 0
    failed: int = 0
    still_pending: int = 0
    submitted: int = 0
    resolved: int = 0
    abandoned: int = 0
    provider_errors: int = 0
    left_for_next_run: int = 0
    dead_letters: int = 0
    dead_letters_set_aside: int = 0
    # Dead letters, jobs or tasks whose handling raised: logged, left for a later run.
    units_failed: int = 0
    audio_ms: int = 0
    # Stretches of detected speech without text in the transcripts this run finished.
    speech_without_text: int = 0
    # Real-time mode: the delays of the uploads this run streamed again (after a dead worker).
    streams: list[StreamMetrics] = []
    # Jobs turned away again by a provider whose quota is full (queued, not failed).
    waiting_for_capacity: int = 0
    # Another run held the reconciler's lease: this one did nothing.
    skipped: bool = False

    def add(self, other: ReconcileReport) -> None:
        """Count ``other``'s work (a part of this run done on another thread) in this report."""
        for name, value in other:
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, name, getattr(self, name) + value)
        self.streams.extend(other.streams)

    # Finished jobs' events delivered (webhooks, event bus) when due (pipeline/steps/notify.py).
    events: DeliveryReport = DeliveryReport()


def reconcile(
    ports: PipelinePorts,
    *,
    limit: int = 500,
    out_of_time: Callable[[], bool] = lambda: False,
    time_left: TimeLeft = lambda: None,
) -> ReconcileReport:
    """One pass over the due jobs; stops early when ``out_of_time`` (the rest stay due).
    ``time_left`` bounds what a real-time profile may start streaming.

    One run at a time, through a lease in the job store held for the run's time: a run that
    finds it held does nothing (no reserved concurrency needed, which a fresh account cannot give).
    """
    report = ReconcileReport()
    now = ports.clock()
    owner = new_owner()
    try:
        taken = ports.jobs.take_lease(
            RUN_LEASE, owner=owner, until=now + (time_left() or RUN_LEASE_TIME), now=now
        )
    except Exception:
        logger.exception("Could not take the reconciler's lease; the next run tries again")
        report.units_failed += 1
        return report
    if not taken:
        logger.info("Another reconciler run holds the lease; this one stops")
        report.skipped = True
        return report
    try:
        return _reconcile(ports, report, limit=limit, out_of_time=out_of_time, time_left=time_left)
    finally:
        _give_up_lease(ports, owner, time_left)


def _give_up_lease(ports: PipelinePorts, owner: str, time_left: TimeLeft) -> None:
    """End this run's lease, retrying through a short job-store outage: a lease left behind keeps
    every later run out until it runs out by itself (the run's whole time, minutes)."""
    left = time_left()
    deadline = time.monotonic() + min(
        LEASE_RELEASE_RETRY_S, left.total_seconds() if left else LEASE_RELEASE_RETRY_S
    )
    delay = 0.1
    while True:
        try:
            ports.jobs.end_lease(RUN_LEASE, owner=owner)
            return
        except Exception:
            if time.monotonic() + delay > deadline:
                logger.exception("Could not give the reconciler's lease up; it runs out by itself")
                return
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def _reconcile(
    ports: PipelinePorts,
    report: ReconcileReport,
    *,
    limit: int,
    out_of_time: Callable[[], bool],
    time_left: TimeLeft,
) -> ReconcileReport:
    if ports.dead_letters is not None:
        _drain(ports, report, out_of_time)
    # Round after round while the run has time: a backlog (a burst waiting for capacity, a wave
    # of lost callbacks) is worked through at the run's pace, not ``limit`` jobs per schedule.
    seen: set[str] = set()
    for _ in range(MAX_ROUNDS):
        now = ports.clock()
        try:
            listed = ports.jobs.due(now, limit=limit)
        except Exception:
            # The job store is unreachable: nothing can be carried on now; the next run tries again.
            logger.exception("Could not read the due jobs; the next run tries again")
            report.units_failed += 1
            break
        fresh = [job for job in listed if job.id not in seen]
        if not fresh:
            break  # nothing due, or only what this run already looked at (its index may lag)
        seen.update(job.id for job in fresh)
        _round(fresh, now, ports, report, out_of_time, time_left)
        if len(listed) < limit or out_of_time():
            break
    report.events = deliver_due(ports, out_of_time=out_of_time)
    logger.info("Reconciled", extra=report.model_dump(exclude={"streams"}))
    return report


def _round(
    listed: list[Job],
    now: datetime,
    ports: PipelinePorts,
    report: ReconcileReport,
    out_of_time: Callable[[], bool],
    time_left: TimeLeft,
) -> None:
    report.due += len(listed)
    by_state: dict[JobState, list[Job]] = defaultdict(list)
    for stale in listed:
        try:
            job = _fresh_and_due(stale, now, ports, report)
        except Exception:
            # One job's trouble (a storage error writing its report, say) never stops the run.
            logger.exception("Could not look at a due job; it stays due", extra={"job_id": stale.id})
            report.units_failed += 1
            continue
        if job is not None:
            by_state[job.state].append(job)
    # Resolution binds found tasks (polled now) and abandons attempts without evidence (their
    # jobs are submitted again in this same run).
    resolution = resolve_uncertain(by_state[JobState.SUBMITTING], ports, out_of_time)
    report.resolved += len(resolution.bound)
    report.abandoned += len(resolution.abandoned)
    report.still_pending += resolution.still_pending
    report.provider_errors += resolution.provider_errors
    report.left_for_next_run += resolution.left_for_next_run
    report.units_failed += resolution.units_failed
    _poll_submitted(by_state[JobState.SUBMITTED] + resolution.bound, now, ports, report, out_of_time)
    _submit_again(by_state[JobState.ACCEPTED] + resolution.abandoned, ports, report, out_of_time, time_left)


def _drain(ports: PipelinePorts, report: ReconcileReport, out_of_time: Callable[[], bool]) -> None:
    try:
        drained = drain_dead_letters(ports, out_of_time=out_of_time)
    except Exception:
        # The queue itself is unreachable (each message's own trouble is handled inside).
        logger.exception("Could not read the dead-letter queue; the next run tries again")
        report.units_failed += 1
        return
    report.dead_letters = drained.settled
    report.dead_letters_set_aside = drained.set_aside
    report.units_failed += drained.failed


def _fresh_and_due(stale: Job, now: datetime, ports: PipelinePorts, report: ReconcileReport) -> Job | None:
    """The job as stored now, if it still needs looking at; deadlines are enforced here."""
    job = ports.jobs.get(stale.id)
    if job is None or job.state.is_final or (job.next_check_at and job.next_check_at > now):
        return None
    if job.leased(now):
        # A worker holds it (or the index showed it early): look again when its lease ends.
        apply(ports.jobs, job, lambda current: current.check_later(now, at=current.claimed_until or now))
        return None
    if job.state is JobState.ACCEPTED and job.waiting_since is not None:
        # Queued for a provider at capacity: bounded by how long an upload may wait for one.
        if now - job.waiting_since > ports.limits.capacity_wait:
            _fail_waiting(job, ports)
            report.failed += 1
            return None
        return job
    if now - job.deadline_from > ports.limits.job_deadline:
        _fail_at_deadline(job, ports)
        report.failed += 1
        return None
    return job


def _fail_waiting(job: Job, ports: PipelinePorts) -> None:
    hours = ports.limits.capacity_wait.total_seconds() / 3600
    error = JobError(
        code="CAPACITY_WAIT_EXCEEDED",
        message=f"{job.provider} stayed at capacity for {hours:g} h ({job.capacity_waits} times turned away; "
        f"last answer: {job.error.message if job.error else 'none'}); raise the provider's quota or "
        f"BUCKETSCRIBE_CAPACITY_WAIT_S, and re-drive it with `bucketscribe redrive {job.id}`",
        retryable=True,
    )
    fail_job(job, error, ports)


def _fail_at_deadline(job: Job, ports: PipelinePorts) -> None:
    hours = ports.limits.job_deadline.total_seconds() / 3600
    last = job.error.message if job.error else None
    if job.state is JobState.ACCEPTED:
        error = JobError(
            code=NEVER_SUBMITTED,
            message=f"the upload could not be submitted to {job.provider} within {hours:g} h"
            + (f" (last answer: {last})" if last else "")
            + f"; re-drive it with `bucketscribe redrive {job.id}`",
            retryable=True,
        )
    else:
        task = job.provider_task_id
        error = JobError(
            code="PROVIDER_TIMEOUT",
            message=f"{job.provider} did not finish "
            + (f"task {task}" if task else "the submission")
            + f" within {hours:g} h; a result that arrives later still replaces this report",
            retryable=True,
        )
    fail_job(job, error, ports)


def _poll_submitted(
    jobs: list[Job],
    now: datetime,
    ports: PipelinePorts,
    report: ReconcileReport,
    out_of_time: Callable[[], bool],
) -> None:
    by_task: dict[tuple[str, str], list[Job]] = defaultdict(list)
    for job in jobs:
        if job.parts:
            _check_split(job, now, ports, report, out_of_time)
        elif job.provider_task_id is not None:
            by_task[(job.provider, job.provider_task_id)].append(job)

    def poll(task: tuple[tuple[str, str], list[Job]]) -> ReconcileReport:
        (provider, task_id), task_jobs = task
        own = ReconcileReport()
        _poll_task(provider, task_id, task_jobs, now, ports, own, out_of_time)
        return own

    if not by_task:
        return
    # Each task is a provider query and a few writes, mostly waiting: asked side by side.
    for own in side_by_side(poll, list(by_task.items()), ports.limits.side_by_side):
        report.add(own)


def _poll_task(
    provider: str,
    task_id: str,
    task_jobs: list[Job],
    now: datetime,
    ports: PipelinePorts,
    report: ReconcileReport,
    out_of_time: Callable[[], bool],
) -> None:
    if out_of_time():
        report.left_for_next_run += len(task_jobs)
        return
    try:
        result = fetch_task(ports, provider, task_id)
    except ProviderError as exc:
        report.provider_errors += 1
        logger.warning(
            "Could not ask the provider about a task",
            extra={
                "provider": provider,
                "task_id": task_id,
                "code": exc.code,
                "provider_message": exc.message,
            },
        )
        _all_back_off(task_jobs, now, ports, report)
        return
    except Exception:
        report.units_failed += 1
        logger.exception("Asking about a task failed", extra={"provider": provider, "task_id": task_id})
        _all_back_off(task_jobs, now, ports, report)
        return
    report.tasks_fetched += 1
    for job in task_jobs:
        _finish_one(job, task_id, result, now, ports, report, out_of_time)


def _all_back_off(jobs: list[Job], now: datetime, ports: PipelinePorts, report: ReconcileReport) -> None:
    for job in jobs:
        _back_off_quietly(job, now, ports, report)
        report.still_pending += 1


def _finish_one(
    job: Job,
    task_id: str,
    result: TaskResult,
    now: datetime,
    ports: PipelinePorts,
    report: ReconcileReport,
    out_of_time: Callable[[], bool],
) -> None:
    if out_of_time():
        report.left_for_next_run += 1
        return
    try:
        completion = finish_job(job, task_id, result, ports)
    except Exception as exc:
        # One job's trouble (an expired result link, an odd reply, a storage error) must not
        # stop the others: it backs off and fails at the deadline if it lasts.
        logger.exception("Could not finish a job", extra={"job_id": job.id, "task_id": task_id})
        report.units_failed += 1
        _back_off_quietly(job, now, ports, report, why=describe_error(exc))
        return
    if completion.outcome is CompletionOutcome.DONE:
        report.finished += 1
        report.audio_ms += completion.audio_ms or 0
        if completion.job is not None:
            report.speech_without_text += sum(
                1 for warning in completion.job.warnings if warning.code == "SPEECH_WITHOUT_TEXT"
            )
    elif completion.outcome is CompletionOutcome.FAILED:
        report.failed += 1
    elif completion.outcome is CompletionOutcome.PENDING:
        back_off(job, now, ports)
        report.still_pending += 1


def _check_split(
    job: Job, now: datetime, ports: PipelinePorts, report: ReconcileReport, out_of_time: Callable[[], bool]
) -> None:
    """A split upload's job: merged when its parts are done, failed when one failed (its parts
    are jobs of their own, carried on like any other)."""
    if out_of_time():
        report.left_for_next_run += 1
        return
    try:
        outcome = check_parts(job, ports)
    except Exception as exc:
        logger.exception("Could not check a split upload's parts", extra={"job_id": job.id})
        report.units_failed += 1
        _back_off_quietly(job, now, ports, report, why=describe_error(exc))
        return
    if outcome is PartsOutcome.DONE:
        report.finished += 1
    elif outcome is PartsOutcome.FAILED:
        report.failed += 1
    elif outcome is PartsOutcome.PENDING:
        back_off(job, now, ports)
        report.still_pending += 1


def back_off(job: Job, now: datetime, ports: PipelinePorts, *, why: str | None = None) -> None:
    """Look at the job again later, exponentially less often up to the cap."""
    limits = ports.limits
    interval = min(limits.first_check_after * (2**job.checks), limits.max_check_interval)
    apply(ports.jobs, job, lambda current: current.check_later(now, at=now + interval))
    if why:
        logger.info("Job checked; trying again later", extra={"job_id": job.id, "reason": why})


def _back_off_quietly(
    job: Job, now: datetime, ports: PipelinePorts, report: ReconcileReport, *, why: str | None = None
) -> None:
    """``back_off``, never raising (the job store may be what failed): the job stays due anyway."""
    try:
        back_off(job, now, ports, why=why)
    except Exception:
        logger.exception("Could not reschedule a job; it stays due", extra={"job_id": job.id})
        report.units_failed += 1


def _submit_again(
    jobs: list[Job],
    ports: PipelinePorts,
    report: ReconcileReport,
    out_of_time: Callable[[], bool],
    time_left: TimeLeft,
) -> None:
    if not jobs:
        return
    if out_of_time():
        report.left_for_next_run += len(jobs)
        return
    try:
        results = continue_accepted(jobs, ports, out_of_time=out_of_time, time_left=time_left)
    except Exception:
        # continue_accepted settles each job on its own; this is a fault outside any one of them.
        logger.exception("Submitting due jobs failed; they stay due", extra={"jobs": len(jobs)})
        report.units_failed += 1
        return
    for result in results:
        if result.stream is not None:
            report.streams.append(result.stream)
        if result.outcome is UploadOutcome.SUBMITTED:
            report.submitted += 1
        elif result.outcome is UploadOutcome.DONE:  # streamed again, outputs written (real-time mode)
            report.finished += 1
        elif result.outcome is UploadOutcome.REJECTED:
            report.failed += 1
        elif result.outcome is UploadOutcome.DEFERRED:
            report.still_pending += 1
        elif result.outcome is UploadOutcome.WAITING:
            report.waiting_for_capacity += 1
        elif result.outcome is UploadOutcome.RETRY:
            report.units_failed += 1
