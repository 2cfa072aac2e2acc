"""Use cases: a provider says a task is done (callback, push or poll) → outputs in the bucket.

Nothing a callback *says* is trusted: the callback only names a job; the result
is always re-fetched from the provider's authenticated API. Finishing is
idempotent: a job that is already final is left alone, so repeated callbacks
write nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from bucketscribe.model import Job, JobError, JobState, Transcript
from bucketscribe.pipeline.ports import PipelinePorts
from bucketscribe.pipeline.submit import fail_job
from bucketscribe.profiles import ALL_OUTPUTS
from bucketscribe.providers.base import FileOutcome, TaskResult, TaskStatus
from bucketscribe.render import CONTENT_TYPES, render

logger = Logger(child=True)


class CompletionOutcome(StrEnum):
    DONE = "DONE"
    FAILED = "FAILED"
    PENDING = "PENDING"
    DEFERRED = "DEFERRED"
    ALREADY_FINAL = "ALREADY_FINAL"
    UNKNOWN_JOB = "UNKNOWN_JOB"


class Completion(BaseModel):
    job_id: str
    outcome: CompletionOutcome
    job: Job | None = None
    audio_ms: int | None = None


def complete_sis_callback(
    job_id: str, token: str | None, claimed_task_id: str | None, ports: PipelinePorts
) -> Completion:
    """Handle ``POST /callbacks/sis/{job_id}?token=…``.

    A wrong token and an unknown job give the same answer, so the endpoint
    reveals nothing about which jobs exist.
    """
    if not ports.signer.verify(job_id, token):
        logger.warning("Callback with a bad token refused", extra={"job_id": job_id})
        return Completion(job_id=job_id, outcome=CompletionOutcome.UNKNOWN_JOB)
    job = ports.jobs.get(job_id)
    if job is None:
        logger.warning("Callback for a job we do not know", extra={"job_id": job_id})
        return Completion(job_id=job_id, outcome=CompletionOutcome.UNKNOWN_JOB)
    if job.provider_task_id is None and claimed_task_id:
        # The provider answered before we recorded its task id. The claimed id is
        # only used to ask the provider itself, with our credentials.
        job = job.model_copy(update={"provider_task_id": claimed_task_id})
    return complete_job(job, ports)


class UnknownTask(LookupError):
    """No job is recorded for a task yet: the push beat our bookkeeping (retry later) or is bogus."""


def complete_task(
    provider_name: str,
    task_id: str,
    ports: PipelinePorts,
    *,
    out_of_time: Callable[[], bool] = lambda: False,
) -> list[Completion]:
    """A provider says a task ended (push or poll): finish every job the task carries.

    Jobs already final are left alone, so a repeated push fetches and writes nothing. When
    ``out_of_time`` says so (an HTTP caller gives up after ~29 s), the remaining jobs are
    left due for the reconciler at once instead (DEFERRED).
    """
    files = ports.jobs.task_files(provider_name, task_id)
    if not files:
        raise UnknownTask(f"no jobs recorded for {provider_name} task {task_id}")
    jobs = [
        job.model_copy(update={"provider_task_id": task_id, "provider_file": files[job.id]})
        for job in (ports.jobs.get(i) for i in sorted(files))
        if job is not None
    ]
    open_jobs = [job for job in jobs if not job.state.is_final]
    completions = [
        Completion(job_id=job.id, outcome=CompletionOutcome.ALREADY_FINAL, job=job)
        for job in jobs
        if job.state.is_final
    ]
    if not open_jobs:
        return completions
    result = ports.provider(provider_name).fetch(task_id)
    for job in open_jobs:
        if out_of_time():
            completions.append(_defer(job, ports))
            continue
        completions.append(apply_task_result(job, result, ports))
    return completions


def _defer(job: Job, ports: PipelinePorts) -> Completion:
    now = ports.clock()
    due = job.model_copy(update={"next_check_at": now, "updated_at": now})
    ports.jobs.replace(due, expected=[job.state])
    return Completion(job_id=job.id, outcome=CompletionOutcome.DEFERRED, job=due)


def apply_task_result(job: Job, result: TaskResult, ports: PipelinePorts) -> Completion:
    """Finish ``job`` from what the provider said about its task (pending → nothing changes)."""
    if result.status is TaskStatus.NOT_FOUND:
        error = result.error or JobError(
            code="TASK_NOT_FOUND", message="the provider no longer knows this task"
        )
        return _failed(job, error, ports)
    outcome = result.outcome_for(job.provider_file)
    if outcome.status is TaskStatus.DONE:
        outcome = ports.provider(job.provider).load_result(outcome)
    return finish_from_outcome(job, outcome, ports)


def complete_job(job: Job, ports: PipelinePorts) -> Completion:
    """Ask the provider where the job's task stands and finish the job if it can be finished."""
    if job.state.is_final:
        return Completion(job_id=job.id, outcome=CompletionOutcome.ALREADY_FINAL, job=job)
    if job.provider_task_id is None:
        return Completion(job_id=job.id, outcome=CompletionOutcome.PENDING, job=job)
    result = ports.provider(job.provider).fetch(job.provider_task_id)
    return apply_task_result(job, result, ports)


def finish_from_outcome(job: Job, outcome: FileOutcome, ports: PipelinePorts) -> Completion:
    if outcome.status is TaskStatus.PENDING:
        return Completion(job_id=job.id, outcome=CompletionOutcome.PENDING, job=job)
    if outcome.status is TaskStatus.DONE and outcome.transcript is not None:
        return _finalize(job, outcome.transcript, outcome.raw, ports)
    error = outcome.error or JobError(code="PROVIDER_FAILED", message="the provider reported a failure")
    return _failed(job, error, ports)


def _failed(job: Job, error: JobError, ports: PipelinePorts) -> Completion:
    failed = fail_job(job, error, ports)
    return Completion(job_id=job.id, outcome=CompletionOutcome.FAILED, job=failed)


def _finalize(job: Job, transcript: Transcript, raw: dict | None, ports: PipelinePorts) -> Completion:
    current = ports.jobs.get(job.id)
    if current is not None and current.state.is_final:
        return Completion(job_id=job.id, outcome=CompletionOutcome.ALREADY_FINAL, job=current)
    profile = ports.profiles.find(job.profile)
    transcript = transcript.model_copy(
        update={
            "source": job.source,
            "provider": job.provider,
            "model": job.model,
            "language": transcript.language or (profile.language if profile else None),
        }
    )
    layout = ports.layout
    bucket = job.source.bucket
    written: list[str] = []
    if raw is not None:
        raw_key = layout.output_key(job.source.key, f"{job.provider}.json")
        ports.storage.put(
            bucket, raw_key, json.dumps(raw, ensure_ascii=False).encode(), content_type="application/json"
        )
        written.append(raw_key)
    formats = profile.outputs if profile else list(ALL_OUTPUTS)
    options = profile.render if profile else None
    for fmt in formats:
        key = layout.output_key(job.source.key, fmt)
        body = render(transcript, fmt, options).encode("utf-8")
        ports.storage.put(bucket, key, body, content_type=CONTENT_TYPES[fmt])
        written.append(key)
    now = ports.clock()
    done = job.model_copy(
        update={
            "state": JobState.DONE,
            "outputs": written,
            "updated_at": now,
            "finished_at": now,
            "next_check_at": None,
            "error": None,
        }
    )
    if not ports.jobs.replace(done, expected=[JobState.ACCEPTED, JobState.SUBMITTED]):
        final = ports.jobs.get(job.id)
        return Completion(job_id=job.id, outcome=CompletionOutcome.ALREADY_FINAL, job=final)
    logger.info(
        "Transcript written",
        extra={
            "job_id": job.id,
            "key": job.source.key,
            "outputs": written,
            "duration_ms": transcript.duration_ms,
        },
    )
    return Completion(
        job_id=job.id, outcome=CompletionOutcome.DONE, job=done, audio_ms=transcript.duration_ms
    )
