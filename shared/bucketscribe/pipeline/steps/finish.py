"""Step: what a provider says about a task → the job finished, failed, or left pending.

The result is always what the provider's authenticated API says (never a callback's body). A
finished result is written once, by the one worker that holds the job's finishing lease
(``outputs.publish``); a result the provider no longer has gets one new attempt while the upload
is still there; a part's result waits for its siblings and the last one merges them.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from bucketscribe.domain.coverage import with_coverage
from bucketscribe.domain.job import Attempt, AttemptState, Job, JobError, JobState
from bucketscribe.domain.transcript import Transcript
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.pipeline.steps.failures import fail_job
from bucketscribe.pipeline.steps.intake import upload_unchanged, upload_unreadable
from bucketscribe.pipeline.steps.job_writes import apply
from bucketscribe.pipeline.steps.outputs import Publication, named, publish, write_outputs
from bucketscribe.pipeline.steps.parts import part_finished, write_part_result
from bucketscribe.ports.provider import FileOutcome, TaskProvider, TaskResult, TaskStatus
from bucketscribe.ports.storage import ObjectUnreadable

logger = Logger(child=True)


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


def ignored(job: Job, task_id: str | None, why: str) -> Completion:
    logger.warning("Callback ignored", extra={"job_id": job.id, "claimed_task_id": task_id, "reason": why})
    return Completion(job_id=job.id, outcome=CompletionOutcome.IGNORED, job=job, reason=why)


def finish_job(job: Job, task_id: str, result: TaskResult, ports: PipelinePorts) -> Completion:
    """Finish ``job`` from what the provider says about its task ``task_id`` (pending → nothing)."""
    attempt = next((a for a in job.attempts if a.task_id == task_id), None)
    if attempt is None:
        return ignored(job, task_id, "the task is not bound to this job")
    if job.state.is_final and not job.accepts_late_result:
        return Completion(job_id=job.id, outcome=CompletionOutcome.ALREADY_FINAL, job=job)
    if result.status is TaskStatus.NOT_FOUND:
        return _result_gone(job, attempt, result, ports)
    outcome = result.outcome_for(attempt.provider_file)
    if outcome.status is TaskStatus.PENDING:
        return Completion(job_id=job.id, outcome=CompletionOutcome.PENDING, job=job)
    if outcome.status is TaskStatus.DONE:
        return _finalize_loaded(job, lambda: _loaded(load_result(ports, job.provider, outcome)), ports)
    error = outcome.error or JobError(code="PROVIDER_FAILED", message="the provider reported a failure")
    return _failed(job, error, ports)


class NoTranscript(Exception):
    def __init__(self, error: JobError) -> None:
        super().__init__(error.message)
        self.error = error


Loaded = tuple[Transcript, dict[str, Any] | None, dict[int | None, int] | None]


def _loaded(outcome: FileOutcome) -> Loaded:
    if outcome.transcript is None:
        raise NoTranscript(
            outcome.error
            or JobError(code="PROVIDER_FAILED", message="the provider's result holds no transcript")
        )
    return outcome.transcript, outcome.raw, outcome.reported_speech_ms


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
    job: Job,
    transcript: Transcript,
    raw: dict[str, Any] | None,
    ports: PipelinePorts,
    *,
    reported_speech: dict[int | None, int] | None = None,
) -> Completion:
    return _finalize_loaded(job, lambda: (transcript, raw, reported_speech), ports)


def _finalize_loaded(job: Job, load: Callable[[], Loaded], ports: PipelinePorts) -> Completion:
    """Write the outputs of the result ``load`` gives, under the job's finishing lease: a result
    that must be downloaded is downloaded only by the one worker holding it, so a push delivered
    again meanwhile finds the lease (BUSY) rather than downloading it a second time."""
    kept: list[Transcript] = []

    def write(finishing: Job) -> tuple[list[str], Transcript]:
        transcript, raw, reported_speech = load()
        written = with_coverage(named(finishing, transcript, ports), reported_speech=reported_speech)
        kept.append(written)
        if finishing.part_of is not None:
            return write_part_result(finishing, written, raw, ports), written
        return write_outputs(finishing, written, raw, ports), written

    try:
        published = publish(job, write, ports)
    except NoTranscript as missing:
        return _failed(job, missing.error, ports)
    except ObjectUnreadable as refused:
        # Whether a later upload replaced it cannot be told: nothing is written but the reason.
        return _failed(job, upload_unreadable(refused), ports)
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
            "duration_ms": kept[0].duration_ms,
        },
    )
    if job.part_of is not None:
        _merge_if_last(job, ports)
    return Completion(
        job_id=job.id, outcome=CompletionOutcome.DONE, job=published.job, audio_ms=kept[0].duration_ms
    )


def _merge_if_last(part: Job, ports: PipelinePorts) -> None:
    """A part is done: merge its upload's transcript now if it was the last (else the upload's
    job is merged when its last part is done, or by the reconciler)."""
    try:
        part_finished(part, ports)
    except Exception:
        logger.exception("Could not merge the parts yet; the reconciler will", extra={"job_id": part.id})


def fetch_task(ports: PipelinePorts, provider_name: str, task_id: str) -> TaskResult:
    """Where ``provider_name``'s task stands. A provider that keeps no tasks (a stream's results
    went only to the worker that streamed it) has nothing to say: the result is gone."""
    provider = ports.provider(provider_name)
    if isinstance(provider, TaskProvider):
        return provider.fetch(task_id)
    return TaskResult(
        task_id=task_id,
        status=TaskStatus.NOT_FOUND,
        error=JobError(
            code="STREAM_RESULT_LOST",
            message="a stream keeps no result at the service, and the worker that streamed it "
            "stopped before its outputs were written",
        ),
    )


def load_result(ports: PipelinePorts, provider_name: str, outcome: FileOutcome) -> FileOutcome:
    provider = ports.provider(provider_name)
    return provider.load_result(outcome) if isinstance(provider, TaskProvider) else outcome
