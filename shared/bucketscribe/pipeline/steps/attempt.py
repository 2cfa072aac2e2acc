"""Step: claimed, prepared jobs → one provider call for a chunk of them, and its answer recorded.

The intent to submit is durable before the provider is called (the job is SUBMITTING with a new
attempt and a lease). The provider's answer then decides:

- a task id: recorded (retried through job-store outages for as long as the run may, then kept
  in the bucket for the reconciler) → SUBMITTED;
- a certain refusal for now (throttled, busy, unreachable before sending) → ACCEPTED again,
  retried later with backoff, at most ``max_submit_attempts`` times;
- an ambiguous failure (timeout, connection lost after sending, 5xx, a crash in the SDK) → the
  attempt is UNCERTAIN and is resolved from evidence by the reconciler, never re-sent blindly;
- a refused input → FAILED with the provider's code and message.

No attempt starts once the upload has cost ``max_provider_jobs`` provider jobs.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Callable
from functools import partial

from aws_lambda_powertools import Logger

from bucketscribe.domain.job import AttemptState, Job, JobError, provider_jobs_exhausted
from bucketscribe.domain.profile import Profile
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.pipeline.steps.intake import UploadOutcome, UploadResult, already_there, job_result, reject
from bucketscribe.pipeline.steps.job_writes import apply, describe_error, with_store_retries
from bucketscribe.pipeline.steps.receipts import Receipt, keep_receipt
from bucketscribe.pipeline.steps.side_by_side import side_by_side
from bucketscribe.ports.provider import (
    CallsBack,
    Provider,
    ProviderError,
    SearchesTasks,
    SubmitItem,
    SubmitReceipt,
    TaskProvider,
    file_key,
)

logger = Logger(child=True)
# The code of a job whose upload could not be submitted within the retries or the deadline.
NEVER_SUBMITTED = "NEVER_SUBMITTED"


def submit_chunk(
    jobs: list[Job],
    profile: Profile,
    provider: TaskProvider,
    ports: PipelinePorts,
    keep_trying: Callable[[], bool],
) -> list[UploadResult]:
    now = ports.clock()

    def begin(job: Job) -> UploadResult | tuple[Job, SubmitItem]:
        """The attempt's intent made durable (the job created with it, for a draft)."""
        if (exhausted := provider_jobs_exhausted(job, ports.limits.max_provider_jobs)) is not None:
            return reject(job, exhausted, ports)
        media_url = _media_url(job, ports)
        begun = apply(
            ports.jobs,
            job,
            partial(
                Job.start_attempt,
                now=now,
                lease_until=now + ports.limits.claim_lease,
                owner=job.claimed_by or "",
                provider_file=file_key(media_url),
            ),
        )
        if begun is None:
            if job.draft:
                return already_there(job, ports)
            return UploadResult(
                source=job.source,
                outcome=UploadOutcome.DUPLICATE,
                job_id=job.id,
                reason="taken over by another worker",
            )
        item = SubmitItem(
            job_id=job.id, media_url=media_url, callback_url=_callback_url(begun, provider, ports)
        )
        return begun, item

    begun = side_by_side(begin, jobs, ports.limits.side_by_side)
    started = [each for each in begun if isinstance(each, tuple)]
    outcomes = iter(_call_provider(started, profile, provider, ports, keep_trying) if started else [])
    return [each if isinstance(each, UploadResult) else next(outcomes) for each in begun]


def _call_provider(
    started: list[tuple[Job, SubmitItem]],
    profile: Profile,
    provider: TaskProvider,
    ports: PipelinePorts,
    keep_trying: Callable[[], bool],
) -> list[UploadResult]:
    items = [item for _, item in started]
    try:
        receipts = provider.submit(items, profile)
    except ProviderError as exc:
        return [unsuccessful(job, exc, provider, ports) for job, _ in started]
    except Exception as exc:
        # An error inside the SDK after the request may have gone out: treat it as ambiguous.
        logger.exception("The provider call failed unexpectedly", extra={"uploads": len(items)})
        error = ProviderError("SUBMIT_FAILED", describe_error(exc), retryable=True, maybe_done=True)
        return [unsuccessful(job, error, provider, ports) for job, _ in started]
    return _record_receipts(started, receipts, provider, ports, keep_trying)


def _record_receipts(
    started: list[tuple[Job, SubmitItem]],
    receipts: list[SubmitReceipt],
    provider: TaskProvider,
    ports: PipelinePorts,
    keep_trying: Callable[[], bool],
) -> list[UploadResult]:
    by_job = {receipt.job_id: receipt for receipt in receipts}
    # A callback or push names the task, not the files: record which jobs it carries first,
    # since a fast provider may call back while the jobs are still being marked submitted.
    tasks: dict[str, dict[str, str]] = defaultdict(dict)
    for job, item in started:
        receipt = by_job.get(job.id)
        if receipt is not None and receipt.task_id:
            tasks[receipt.task_id][job.id] = file_key(item.media_url)
    try:
        for task_id, files in tasks.items():
            with_store_retries(
                partial(ports.jobs.bind_task, provider.name, task_id, files),
                what="task record",
                keep_trying=keep_trying,
            )
    except Exception:
        logger.exception(
            "Could not record the provider's answer; keeping it in the bucket for the reconciler",
            extra={"tasks": list(tasks)},
        )
        return [_unrecorded(job, item, by_job.get(job.id), provider, ports) for job, item in started]
    return side_by_side(
        lambda pair: _record_one(pair[0], pair[1], by_job.get(pair[0].id), provider, ports, keep_trying),
        started,
        ports.limits.side_by_side,
    )


def _record_one(
    job: Job,
    item: SubmitItem,
    receipt: SubmitReceipt | None,
    provider: TaskProvider,
    ports: PipelinePorts,
    keep_trying: Callable[[], bool],
) -> UploadResult:
    if receipt is None or not receipt.task_id:
        error = (receipt.error if receipt else None) or JobError(
            code="NO_TASK_ID", message="the provider accepted the request but returned no task id"
        )
        return reject(job, error, ports)
    task_id = receipt.task_id
    now = ports.clock()
    number = job.attempts[-1].number

    def bind(current: Job) -> Job:
        return current.bind_task(
            now,
            number=number,
            task_id=task_id,
            provider_file=file_key(item.media_url),
            check_at=now + ports.limits.first_check_after,
            bound_by="answer",
        )

    try:
        bound = with_store_retries(
            lambda: apply(ports.jobs, job, bind), what="submitted job", keep_trying=keep_trying
        )
    except Exception:
        logger.exception(
            "Could not record the submission; keeping the answer in the bucket for the reconciler",
            extra={"job_id": job.id, "task_id": task_id},
        )
        return _unrecorded(job, item, receipt, provider, ports)
    if bound is None:
        logger.info(
            "Job moved on before its submission was recorded", extra={"job_id": job.id, "task_id": task_id}
        )
    logger.info(
        "Submitted",
        extra={
            "job_id": job.id,
            "key": job.source.key,
            "provider": provider.name,
            "task_id": task_id,
            "attempt": number,
        },
    )
    return UploadResult(source=job.source, outcome=UploadOutcome.SUBMITTED, job_id=job.id)


def _unrecorded(
    job: Job, item: SubmitItem, receipt: SubmitReceipt | None, provider: TaskProvider, ports: PipelinePorts
) -> UploadResult:
    """The provider answered but the job store would not take it: the answer is kept in the
    bucket (pipeline/receipts.py) so the reconciler binds the task instead of paying again."""
    if receipt is not None and receipt.task_id:
        kept = Receipt(
            job_id=job.id,
            attempt=job.attempts[-1].number,
            provider=provider.name,
            task_id=receipt.task_id,
            provider_file=file_key(item.media_url),
        )
        try:
            keep_receipt(job, kept, ports)
        except Exception:
            logger.exception("Could not keep the provider's answer either", extra={"job_id": job.id})
    return _deferred(job, "the submission could not be recorded yet")


def unsuccessful(job: Job, exc: ProviderError, provider: Provider, ports: PipelinePorts) -> UploadResult:
    now = ports.clock()
    limits = ports.limits
    error = exc.as_job_error()
    if exc.maybe_done:
        # The provider may hold a task for this attempt: find out before submitting again.
        wait = limits.search_delay if isinstance(provider, SearchesTasks) else limits.evidence_wait
        apply(ports.jobs, job, lambda current: current.attempt_uncertain(now, error, check_at=now + wait))
        logger.warning(
            "The provider's answer was lost; the attempt will be resolved from evidence",
            extra={
                "job_id": job.id,
                "key": job.source.key,
                "code": exc.code,
                "provider_message": exc.message,
            },
        )
        return _deferred(job, f"outcome unknown ({exc.code}); resolving from evidence")
    if not exc.retryable:
        return reject(job, error, ports)
    if exc.over_capacity:
        return wait_for_capacity(job, error, ports)
    refusals = job.attempts_in(AttemptState.REFUSED) + 1
    if refusals >= limits.max_submit_attempts:
        gave_up = JobError(
            code=NEVER_SUBMITTED,
            message=f"{job.provider} refused the upload {refusals} times; the last answer was {exc.code}: "
            f"{exc.message}. Re-drive it with `bucketscribe redrive {job.id}`",
            retryable=True,
        )
        return reject(job, gave_up, ports)
    retry_at = now + min(limits.submit_retry_after * 2 ** (refusals - 1), limits.max_check_interval)
    apply(ports.jobs, job, lambda current: current.attempt_refused(now, error, retry_at=retry_at))
    logger.warning(
        "Provider busy or unreachable; the upload will be retried",
        extra={
            "job_id": job.id,
            "key": job.source.key,
            "code": exc.code,
            "provider_message": exc.message,
            "retry_at": retry_at.isoformat(),
        },
    )
    return _deferred(job, f"{exc.code}: {exc.message}; retried at {retry_at.isoformat()}")


def wait_for_capacity(job: Job, error: JobError, ports: PipelinePorts) -> UploadResult:
    """Back in the queue until the provider has room again: asked again after a while with some
    spread (a burst's jobs do not all come back at once), or sooner when one of its tasks
    finishes; not counted against the upload's attempts, bounded by ``Limits.capacity_wait``."""
    now = ports.clock()
    spread = ports.limits.capacity_retry_after * (1 + secrets.randbelow(1000) / 1000)
    waiting = apply(
        ports.jobs,
        job,
        partial(
            Job.wait_for_capacity, now=now, error=error, retry_at=now + spread, owner=job.claimed_by or ""
        ),
    )
    if waiting is None:
        return already_there(job, ports) if job.draft else _deferred(job, "taken over by another worker")
    logger.info(
        "The provider is at capacity; the upload waits in the queue",
        extra={"job_id": job.id, "key": job.source.key, "code": error.code, "waits": waiting.capacity_waits},
    )
    return job_result(waiting, UploadOutcome.WAITING, f"{error.code}: the provider is at capacity; queued")


def _media_url(job: Job, ports: PipelinePorts) -> str:
    expires = ports.limits.presign_expiry_s
    if job.media_key:
        # Our extracted track: one key per upload revision, so no version is needed.
        return ports.storage.presign_get(job.source.bucket, job.media_key, expires_s=expires)
    return ports.storage.presign_get(
        job.source.bucket, job.source.key, expires_s=expires, version_id=job.source.version_id
    )


def _callback_url(job: Job, provider: Provider, ports: PipelinePorts) -> str | None:
    if not isinstance(provider, CallsBack):
        return None
    attempt = job.attempts[-1]
    expires = attempt.started_at + ports.limits.callback_token_ttl
    return ports.signer.callback_url(ports.callback_base_url, provider.name, job.id, attempt.number, expires)


def _deferred(job: Job, reason: str) -> UploadResult:
    return job_result(job, UploadOutcome.DEFERRED, reason)
