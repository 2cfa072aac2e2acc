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

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from bucketscribe.domain.callback_tokens import CallbackClaim
from bucketscribe.domain.coverage import with_coverage
from bucketscribe.domain.job import Attempt, AttemptState, Job, JobError, JobState
from bucketscribe.domain.transcript import Transcript
from bucketscribe.pipeline.steps.failures import fail_job
from bucketscribe.pipeline.steps.intake import upload_unchanged
from bucketscribe.pipeline.steps.job_writes import apply
from bucketscribe.pipeline.steps.outputs import Publication, named, publish, write_outputs
from bucketscribe.pipeline.steps.parts import part_finished, write_part_result
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.ports.provider import TaskResult, TaskStatus

logger = Logger(child=True)

# How far the length of the audio a provider reports may be from our probe's and still be the
# same recording: decoders differ by an encoder's priming and padding (tens of ms for MP3/AAC)
# and a header's rounding; whichever is larger of these two.
AUDIO_MATCH_MS = 200
AUDIO_MATCH_RATIO = 0.01


class CompletionOutcome(StrEnum):
    DONE = "DONE"
    FAILED = "FAILED"
    PENDING = "PENDING"
    DEFERRED = "DEFERRED"  # out of time: left due for the reconciler
    ALREADY_FINAL = "ALREADY_FINAL"
    BUSY = "BUSY"  # another worker is writing the outputs right now
    RESUBMIT = "RESUBMIT"  # the result expired at the provider: the upload gets a new attempt
    UNKNOWN_JOB = "UNKNOWN_JOB"  # not authentic, or no such job/attempt (answered like a bad token)
    IGNORED = "IGNORED"  # authentic, but names a task that is not this job's
    SUPERSEDED = "SUPERSEDED"  # a later upload of the key came first: nothing written


class Completion(BaseModel):
    job_id: str
    outcome: CompletionOutcome
    job: Job | None = None
    audio_ms: int | None = None
    reason: str | None = None


def complete_sis_callback(
    job_id: str, claim: CallbackClaim | None, claimed_task_id: str | None, ports: PipelinePorts
) -> Completion:
    """Handle ``POST /callbacks/sis/{job_id}?attempt=…&exp=…&token=…``.

    A wrong or expired token, an unknown job and an unknown attempt give the same answer, so the
    endpoint reveals nothing about which jobs exist.
    """
    now = ports.clock()
    if not ports.signer.verify(claim, now):
        logger.warning("Callback with a bad or expired token refused", extra={"job_id": job_id})
        return Completion(job_id=job_id, outcome=CompletionOutcome.UNKNOWN_JOB)
    assert claim is not None
    job = ports.jobs.get(job_id)
    attempt = job.attempt(claim.attempt) if job else None
    if job is None or attempt is None:
        logger.warning("Callback for a job or attempt we do not know", extra={"job_id": job_id})
        return Completion(job_id=job_id, outcome=CompletionOutcome.UNKNOWN_JOB)
    if attempt.task_id is not None:
        # Recorded by our submission: whatever task the body names, this one is asked about.
        return finish_job(job, attempt.task_id, ports.provider(job.provider).fetch(attempt.task_id), ports)
    if not attempt.state.unresolved or not claimed_task_id:
        return _ignored(job, claimed_task_id, "the attempt has no task to bind")
    return _bind_claimed_task(job, attempt, claimed_task_id, ports)


def _bind_claimed_task(job: Job, attempt: Attempt, task_id: str, ports: PipelinePorts) -> Completion:
    """The callback of an attempt whose submit answer we never recorded names its task: bind it
    if the provider's own record proves it belongs to that attempt."""
    limits = ports.limits
    bound_elsewhere = ports.jobs.task_files(job.provider, task_id)
    if bound_elsewhere and job.id not in bound_elsewhere:
        return _ignored(job, task_id, "the task belongs to another job")
    result = ports.provider(job.provider).fetch(task_id)
    if result.status is TaskStatus.NOT_FOUND:
        return _ignored(job, task_id, "the provider does not know the task")
    window_end = (attempt.ended_at or attempt.started_at) + limits.clock_skew
    if result.created_at is None or not (
        attempt.started_at - limits.clock_skew <= result.created_at <= window_end + limits.search_delay
    ):
        return _ignored(job, task_id, "the task was not created while this attempt was submitted")
    if not same_audio(job.audio_ms, result.audio_ms):
        return _ignored(
            job,
            task_id,
            f"the task's audio ({result.audio_ms} ms) is not this upload's ({job.audio_ms} ms)",
        )
    files = {job.id: attempt.provider_file or ""}
    if job.id not in ports.jobs.bind_task(job.provider, task_id, files):
        return _ignored(job, task_id, "the task belongs to another job")
    now = ports.clock()
    bound = apply(
        ports.jobs,
        job,
        lambda current: current.bind_task(
            now,
            number=attempt.number,
            task_id=task_id,
            provider_file=attempt.provider_file,
            check_at=now + limits.first_check_after,
            bound_by="callback",
        ),
    )
    if bound is None:
        # Often the submitting worker recorded the same task meanwhile (a fast provider called
        # back before the answer was written): then the task is the job's all the same.
        bound = ports.jobs.get(job.id)
        recorded = bound.attempt(attempt.number) if bound else None
        if bound is None or recorded is None or recorded.task_id != task_id:
            return _ignored(job, task_id, "the job moved on")
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


def _ignored(job: Job, task_id: str | None, why: str) -> Completion:
    logger.warning("Callback ignored", extra={"job_id": job.id, "claimed_task_id": task_id, "reason": why})
    return Completion(job_id=job.id, outcome=CompletionOutcome.IGNORED, job=job, reason=why)


class UnknownTask(LookupError):
    """The provider has this task but no job is bound to it yet: our bookkeeping lags (retry later)."""


def complete_task(
    provider_name: str,
    task_id: str,
    ports: PipelinePorts,
    *,
    out_of_time: Callable[[], bool] = lambda: False,
) -> list[Completion]:
    """A provider says a task ended (push or poll): finish every job bound to it.

    A task bound to no job is ignored when the provider does not know it either (not ours);
    when it does, ``UnknownTask`` asks the caller to come back once the reconciler has bound it.
    Jobs already final are left alone, so a repeated push writes nothing. When ``out_of_time``
    says so, the remaining jobs are left due for the reconciler at once (DEFERRED).
    """
    files = ports.jobs.task_files(provider_name, task_id)
    if not files:
        if ports.provider(provider_name).fetch(task_id).status is TaskStatus.NOT_FOUND:
            logger.warning("Push for a task that is not ours ignored", extra={"task_id": task_id})
            return []
        raise UnknownTask(f"no job is bound to {provider_name} task {task_id} yet")
    jobs = [job for job in (ports.jobs.get(job_id) for job_id in sorted(files)) if job is not None]
    completions = [
        Completion(job_id=job.id, outcome=CompletionOutcome.ALREADY_FINAL, job=job)
        for job in jobs
        if job.state.is_final and not job.accepts_late_result
    ]
    open_jobs = [job for job in jobs if not job.state.is_final or job.accepts_late_result]
    if not open_jobs:
        return completions  # a repeated push: nothing is fetched or written
    result = ports.provider(provider_name).fetch(task_id)
    for job in open_jobs:
        if out_of_time():
            completions.append(_defer(job, ports))
            continue
        completions.append(finish_job(job, task_id, result, ports))
    return completions


def _defer(job: Job, ports: PipelinePorts) -> Completion:
    now = ports.clock()
    due = apply(ports.jobs, job, lambda current: current.check_later(now, at=now))
    return Completion(job_id=job.id, outcome=CompletionOutcome.DEFERRED, job=due or job)


def finish_job(job: Job, task_id: str, result: TaskResult, ports: PipelinePorts) -> Completion:
    """Finish ``job`` from what the provider says about its task ``task_id`` (pending → nothing)."""
    attempt = next((a for a in job.attempts if a.task_id == task_id), None)
    if attempt is None:
        return _ignored(job, task_id, "the task is not bound to this job")
    if job.state.is_final and not job.accepts_late_result:
        return Completion(job_id=job.id, outcome=CompletionOutcome.ALREADY_FINAL, job=job)
    if result.status is TaskStatus.NOT_FOUND:
        return _result_gone(job, attempt, result, ports)
    outcome = result.outcome_for(attempt.provider_file)
    if outcome.status is TaskStatus.PENDING:
        return Completion(job_id=job.id, outcome=CompletionOutcome.PENDING, job=job)
    if outcome.status is TaskStatus.DONE:
        loaded = ports.provider(job.provider).load_result(outcome)
        if loaded.transcript is not None:
            return finalize(job, loaded.transcript, loaded.raw, ports)
    error = outcome.error or JobError(code="PROVIDER_FAILED", message="the provider reported a failure")
    return _failed(job, error, ports)


def _result_gone(job: Job, attempt: Attempt, result: TaskResult, ports: PipelinePorts) -> Completion:
    """The provider no longer has the task: one new attempt while the upload is still there."""
    error = result.error or JobError(code="TASK_NOT_FOUND", message="the provider no longer knows this task")
    if attempt.state is not AttemptState.ACCEPTED or job.state.is_final:
        return Completion(job_id=job.id, outcome=CompletionOutcome.ALREADY_FINAL, job=job)
    still_there = upload_unchanged(job, ports)
    if job.attempts_in(AttemptState.EXPIRED) >= 1 or not still_there:
        why = "the upload is gone" if not still_there else "it expired twice"
        expired = JobError(
            code="RESULT_EXPIRED",
            message=f"the result could not be fetched from the provider ({error.message}); "
            f"not submitted again: {why}",
        )
        return _failed(job, expired, ports)
    now = ports.clock()
    again = apply(ports.jobs, job, lambda current: current.result_expired(now, error))
    logger.warning("The provider dropped the result; the upload is submitted again", extra={"job_id": job.id})
    return Completion(job_id=job.id, outcome=CompletionOutcome.RESUBMIT, job=again or job)


def _failed(job: Job, error: JobError, ports: PipelinePorts) -> Completion:
    failed = fail_job(job, error, ports)
    if failed is None:
        return Completion(job_id=job.id, outcome=CompletionOutcome.ALREADY_FINAL, job=ports.jobs.get(job.id))
    if failed.state is JobState.SUPERSEDED:
        return Completion(job_id=job.id, outcome=CompletionOutcome.SUPERSEDED, job=failed)
    return Completion(job_id=job.id, outcome=CompletionOutcome.FAILED, job=failed)


def finalize(
    job: Job, transcript: Transcript, raw: dict[str, Any] | None, ports: PipelinePorts
) -> Completion:
    def write(finishing: Job) -> tuple[list[str], Transcript]:
        written = _as_written(finishing, transcript, raw, ports)
        if finishing.part_of is not None:
            return write_part_result(finishing, written, raw, ports), written
        return write_outputs(finishing, written, raw, ports), written

    published = publish(job, write, ports)
    if published.outcome is not Publication.DONE:
        return Completion(
            job_id=job.id, outcome=CompletionOutcome(published.outcome.value), job=published.job
        )
    logger.info(
        "Transcript written",
        extra={
            "job_id": job.id,
            "key": job.source.key,
            "outputs": published.job.outputs if published.job else [],
            "duration_ms": transcript.duration_ms,
        },
    )
    if job.part_of is not None:
        _merge_if_last(job, ports)
    return Completion(
        job_id=job.id, outcome=CompletionOutcome.DONE, job=published.job, audio_ms=transcript.duration_ms
    )


def _as_written(
    job: Job, transcript: Transcript, raw: dict[str, Any] | None, ports: PipelinePorts
) -> Transcript:
    """The transcript as the outputs carry it: its upload, provider and model, and the coverage of
    its speech checked against the best evidence the result holds."""
    return with_coverage(named(job, transcript, ports), raw=raw)


def _merge_if_last(part: Job, ports: PipelinePorts) -> None:
    """A part is done: merge its upload's transcript now if it was the last (else the upload's
    job is merged when its last part is done, or by the reconciler)."""
    try:
        part_finished(part, ports)
    except Exception:
        logger.exception("Could not merge the parts yet; the reconciler will", extra={"job_id": part.id})
