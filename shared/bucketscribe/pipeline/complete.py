"""Use cases: a provider says a task is done (callback, push or poll) → outputs in the bucket.

Nothing a callback *says* is trusted. A callback binds a task to a job only when our submission
recorded it, or when it is proven ours: the callback URL's token names the attempt, the task is
bound to no other job, and the provider's own record shows it was created while that attempt
was being submitted *and* that the audio it recognised is this upload's (its length matches the
probe's within ``AUDIO_MATCH``: a task of another upload sent to this URL — by a confused
provider or anyone holding the URL — does not). Anything else is ignored (logged, counted):
nothing written, nothing failed; the attempt stays uncertain and ends by the evidence rules. The
result is always re-fetched from the provider's authenticated API, and the outputs are written
once, by the one worker that holds the job's finishing lease.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aws_lambda_powertools import Logger

from bucketscribe.domain.callback_tokens import CallbackClaim
from bucketscribe.domain.job import Attempt, Job
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.pipeline.steps.capacity import pass_on_capacity
from bucketscribe.pipeline.steps.finish import (
    Completion,
    CompletionOutcome,
    fetch_task,
    finish_job,
    ignored,
)
from bucketscribe.pipeline.steps.job_writes import apply
from bucketscribe.pipeline.steps.side_by_side import side_by_side
from bucketscribe.ports.provider import TaskResult, TaskStatus

logger = Logger(child=True)

# How far the length of the audio a provider reports may be from our probe's and still be the
# same recording: decoders differ by an encoder's priming and padding (tens of ms for MP3/AAC)
# and a header's rounding; whichever is larger of these two.
AUDIO_MATCH_MS = 200
AUDIO_MATCH_RATIO = 0.01
# A push for a task of ours can come before its submitter has recorded which jobs the task carries
# (a provider that finishes at once, a job store that is slow for a moment): the push looks again
# after each of these pauses (10 s in all; a record normally comes within one job-store write)
# while the task is young enough for a submitter to be still writing, rather than leave the jobs
# to a later delivery that a pusher may never make (the emulator's and EventBridge's quick
# retries are over within seconds).
RECORD_WAITS_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 2.0, 2.0, 2.15)


def complete_callback(
    claim: CallbackClaim | None, claimed_task_id: Callable[[], str | None], ports: PipelinePorts
) -> Completion:
    """A provider's callback: the job finished (``_complete_callback``), then, where it had
    waited for the provider's capacity, its place handed to the next upload waiting."""
    completion = _complete_callback(claim, claimed_task_id, ports)
    pass_on_capacity(_finished([completion]), ports)
    return completion


def _complete_callback(
    claim: CallbackClaim | None, claimed_task_id: Callable[[], str | None], ports: PipelinePorts
) -> Completion:
    """Handle ``POST /callbacks/{provider}/{job_id}?attempt=…&exp=…&token=…`` (``claim`` is what
    the URL says; ``claimed_task_id`` reads the body, only when the attempt has no task recorded).

    A wrong or expired token, an unknown job, an unknown attempt and a provider the job is not
    at give the same answer, so the endpoint reveals nothing about which jobs exist.
    """
    now = ports.clock()
    job_id = claim.job_id if claim else ""
    if claim is None or not ports.signer.verify(claim, now):
        logger.warning("Callback with a bad or expired token refused", extra={"job_id": job_id})
        return Completion(job_id=job_id, outcome=CompletionOutcome.UNKNOWN_JOB)
    job = ports.jobs.get(job_id)
    attempt = job.attempt(claim.attempt) if job else None
    if job is None or attempt is None or job.provider != claim.provider:
        logger.warning("Callback for a job or attempt we do not know", extra={"job_id": job_id})
        return Completion(job_id=job_id, outcome=CompletionOutcome.UNKNOWN_JOB)
    if attempt.task_id is not None:
        # Recorded by our submission: whatever task the body names, this one is asked about.
        return finish_job(job, attempt.task_id, fetch_task(ports, job.provider, attempt.task_id), ports)
    task_id = claimed_task_id() if attempt.state.unresolved else None
    if not task_id:
        return ignored(job, task_id, "the attempt has no task to bind")
    return _bind_claimed_task(job, attempt, task_id, ports)


def _bind_claimed_task(job: Job, attempt: Attempt, task_id: str, ports: PipelinePorts) -> Completion:
    """The callback of an attempt that has no task bound names one: bind it if our own record of
    the provider's answer says so (the submitting worker had not bound the job yet), else if the
    provider's record of the task proves it belongs to that attempt (the answer was lost)."""
    limits = ports.limits
    bound_elsewhere = ports.jobs.task_files(job.provider, task_id)
    if bound_elsewhere and job.id not in bound_elsewhere:
        return ignored(job, task_id, "the task belongs to another job")
    if job.id in bound_elsewhere:
        from_record = bind_recorded_task(job, task_id, bound_elsewhere[job.id], ports)
        if from_record is not None:
            return finish_job(from_record, task_id, fetch_task(ports, job.provider, task_id), ports)
    result = fetch_task(ports, job.provider, task_id)
    if result.status is TaskStatus.NOT_FOUND:
        return ignored(job, task_id, "the provider does not know the task")
    window_end = (attempt.ended_at or attempt.started_at) + limits.clock_skew
    if result.created_at is None or not (
        attempt.started_at - limits.clock_skew <= result.created_at <= window_end + limits.search_delay
    ):
        return ignored(job, task_id, "the task was not created while this attempt was submitted")
    if not same_audio(job.audio_ms, result.audio_ms):
        return ignored(
            job,
            task_id,
            f"the task's audio ({result.audio_ms} ms) is not this upload's ({job.audio_ms} ms)",
        )
    files = {job.id: attempt.provider_file or ""}
    if job.id not in ports.jobs.bind_task(job.provider, task_id, files):
        return ignored(job, task_id, "the task belongs to another job")
    bound = _bind(job, attempt, task_id, ports, by="callback")
    if bound is None:
        # Often the submitting worker recorded the same task meanwhile (a fast provider called
        # back before the answer was written): then the task is the job's all the same.
        bound = ports.jobs.get(job.id)
        recorded = bound.attempt(attempt.number) if bound else None
        if bound is None or recorded is None or recorded.task_id != task_id:
            return ignored(job, task_id, "the job moved on")
    logger.info(
        "Bound a task found through its callback",
        extra={"job_id": job.id, "task_id": task_id, "attempt": attempt.number},
    )
    return finish_job(bound, task_id, result, ports)


def same_audio(expected_ms: int | None, reported_ms: int | None) -> bool:
    """Whether a provider's ``reported_ms`` of audio is the recording we probed at ``expected_ms``;
    unknown on either side proves nothing."""
    if expected_ms is None or reported_ms is None:
        return False
    return abs(expected_ms - reported_ms) <= max(AUDIO_MATCH_MS, expected_ms * AUDIO_MATCH_RATIO)


def bind_recorded_task(job: Job, task_id: str, recorded_file: str, ports: PipelinePorts) -> Job | None:
    """``job`` bound to ``task_id`` from our own record of the provider's answer, which the
    submitting worker writes before it binds each job: a provider that answers at once (a push,
    a callback) need not wait for that worker. ``None`` when the record is not about the job's
    attempt in flight (that attempt sent other media, or has a task already)."""
    attempt = job.current_attempt
    if attempt is None or not attempt.state.unresolved or attempt.task_id is not None:
        return None
    if (attempt.provider_file or "") != recorded_file:
        return None
    bound = _bind(job, attempt, task_id, ports, by="record")
    if bound is None:
        # The submitting worker bound it meanwhile (or the job moved on): as it stands now.
        current = ports.jobs.get(job.id)
        moved = current.attempt(attempt.number) if current else None
        return current if moved is not None and moved.task_id == task_id else None
    return bound


def _bind(job: Job, attempt: Attempt, task_id: str, ports: PipelinePorts, *, by: str) -> Job | None:
    """``job``'s ``attempt`` bound to ``task_id``, proven ``by`` a callback or our own record."""
    now = ports.clock()
    return apply(
        ports.jobs,
        job,
        lambda current: current.bind_task(
            now,
            number=attempt.number,
            task_id=task_id,
            provider_file=attempt.provider_file,
            check_at=now + ports.limits.first_check_after,
            bound_by=by,
        ),
    )


class UnknownTask(LookupError):
    """The provider has this task but no job is bound to it yet: our bookkeeping lags (retry later)."""


def complete_task(
    provider_name: str,
    task_id: str,
    ports: PipelinePorts,
    *,
    out_of_time: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Completion]:
    """A provider says a task ended (push or poll): its jobs finished (``_complete_task``), then,
    where they had waited for the provider's capacity, the task's place handed to the queue."""
    completions = _complete_task(provider_name, task_id, ports, out_of_time=out_of_time, sleep=sleep)
    pass_on_capacity(_finished(completions), ports, out_of_time=out_of_time)
    return completions


def _finished(completions: list[Completion]) -> list[Job | None]:
    """The jobs these completions finished now (not a repeated callback's, already final)."""
    return [c.job for c in completions if c.outcome in (CompletionOutcome.DONE, CompletionOutcome.FAILED)]


def _complete_task(
    provider_name: str,
    task_id: str,
    ports: PipelinePorts,
    *,
    out_of_time: Callable[[], bool],
    sleep: Callable[[float], None],
) -> list[Completion]:
    """Finish every job bound to the task.

    A task bound to no job is ignored when the provider does not know it either (not ours);
    when it does, the record is awaited while its submitter may still be writing it
    (``_await_record``), and if it does not come ``UnknownTask`` asks the caller to come back
    once the reconciler has bound it.
    Jobs already final are left alone, so a repeated push writes nothing. When ``out_of_time``
    says so, the remaining jobs are left due for the reconciler at once (DEFERRED).
    """
    files = ports.jobs.task_files(provider_name, task_id)
    fetched: TaskResult | None = None
    if not files:
        fetched = fetch_task(ports, provider_name, task_id)
        if fetched.status is TaskStatus.NOT_FOUND:
            logger.warning("Push for a task that is not ours ignored", extra={"task_id": task_id})
            return []
        files = _await_record(provider_name, fetched, ports, out_of_time=out_of_time, sleep=sleep)
        if not files:
            raise UnknownTask(f"no job is bound to {provider_name} task {task_id} yet")
    width = ports.limits.side_by_side
    jobs = [job for job in side_by_side(ports.jobs.get, sorted(files), width) if job is not None]
    jobs = side_by_side(lambda job: _bound_to(job, task_id, files[job.id], ports), jobs, width)
    completions = [
        Completion(job_id=job.id, outcome=CompletionOutcome.ALREADY_FINAL, job=job)
        for job in jobs
        if job.state.is_final and not job.accepts_late_result
    ]
    open_jobs = [job for job in jobs if not job.state.is_final or job.accepts_late_result]
    if not open_jobs:
        return completions  # a repeated push: nothing is fetched or written
    result = fetched or fetch_task(ports, provider_name, task_id)

    def finish(job: Job) -> Completion:
        return _defer(job, ports) if out_of_time() else finish_job(job, task_id, result, ports)

    # A task's files are finished side by side: each is a download and a few small writes, mostly
    # waiting, and a 100-file task done one after the other outlasts the pusher's patience.
    return [*completions, *side_by_side(finish, open_jobs, ports.limits.side_by_side)]


def _await_record(
    provider_name: str,
    task: TaskResult,
    ports: PipelinePorts,
    *,
    out_of_time: Callable[[], bool],
    sleep: Callable[[float], None],
) -> dict[str, str]:
    """The jobs our record says ``task`` carries, looked for again (``RECORD_WAITS_S``) while a
    submitter may still be writing the record: the provider made the task within the submitters'
    claim lease (or does not say when). Empty when it does not appear: not ours, or a submitter
    that stopped before writing it (the reconciler binds what it left)."""
    limits = ports.limits
    made = task.created_at
    if made is not None and ports.clock() - made > limits.claim_lease + limits.clock_skew:
        return {}
    for pause in RECORD_WAITS_S:
        if out_of_time():
            break
        sleep(pause)
        if files := ports.jobs.task_files(provider_name, task.task_id):
            logger.info("A push that came before its task's record found it", extra={"task_id": task.task_id})
            return files
    return {}


def _bound_to(job: Job, task_id: str, recorded_file: str, ports: PipelinePorts) -> Job:
    """``job``, bound to the task its record names when its worker has not done so yet."""
    if any(attempt.task_id == task_id for attempt in job.attempts):
        return job
    return bind_recorded_task(job, task_id, recorded_file, ports) or job


def _defer(job: Job, ports: PipelinePorts) -> Completion:
    now = ports.clock()
    due = apply(ports.jobs, job, lambda current: current.check_later(now, at=now))
    return Completion(job_id=job.id, outcome=CompletionOutcome.DEFERRED, job=due or job)
