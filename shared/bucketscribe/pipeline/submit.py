"""Use case, second half: claimed jobs → provider tasks, exactly one per upload.

The intent to submit is durable before the provider is called (the job is SUBMITTING with a new
attempt and a lease). The provider's answer then decides:

- a task id: recorded (retried through short job-store outages) → SUBMITTED;
- a certain refusal for now (throttled, busy, unreachable before sending) → ACCEPTED again,
  retried later with backoff, at most ``max_submit_attempts`` times;
- an ambiguous failure (timeout, connection lost after sending, 5xx, a crash in the SDK) → the
  attempt is UNCERTAIN and is resolved from evidence by the reconciler, never re-sent blindly;
- a refused input → FAILED with the provider's code and message.

Uploads that share a profile ride together (DashScope takes up to 100 files per task).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import partial
from typing import TypeVar

from aws_lambda_powertools import Logger

from bucketscribe.domain.job import AttemptState, Job, JobError, JobState, provider_jobs_exhausted
from bucketscribe.domain.media_sniff import kind_by_extension
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.steps.failures import fail_job
from bucketscribe.pipeline.steps.intake import (
    UPLOAD_GONE,
    Rejection,
    UploadOutcome,
    UploadResult,
    accept_upload,
    job_result,
    prepare_media,
    reject,
    release,
    release_quietly,
    upload_unchanged,
)
from bucketscribe.pipeline.steps.job_writes import apply, describe_error, new_owner, with_store_retries
from bucketscribe.pipeline.steps.parts import ensure_part_jobs
from bucketscribe.pipeline.context import PipelinePorts, TimeLeft
from bucketscribe.pipeline.steps.stream import stream_jobs
from bucketscribe.pipeline.steps.receipts import Receipt, keep_receipt
from bucketscribe.domain.profile import Profile
from bucketscribe.ports.provider import Provider, ProviderError, SubmitItem, SubmitReceipt, file_key

logger = Logger(child=True)
T = TypeVar("T")

# The code of a job whose upload could not be submitted within the retries or the deadline.
NEVER_SUBMITTED = "NEVER_SUBMITTED"


def submit_uploads(
    refs: Iterable[ObjectRef],
    ports: PipelinePorts,
    *,
    out_of_time: Callable[[], bool] = lambda: False,
    time_left: TimeLeft = lambda: None,
) -> list[UploadResult]:
    """Accept and submit ``refs``; one result per ref, in order. One upload's unexpected error
    never stops the others; when ``out_of_time`` says so, the rest are handed back (RETRY).
    ``time_left`` bounds what a real-time profile may start streaming."""
    refs = list(refs)
    results: list[UploadResult | None] = [None] * len(refs)
    # By profile as served: a real-time profile's uploads handed to file transcription go apart.
    ready: dict[tuple[str, str], list[tuple[int, Job, Profile]]] = defaultdict(list)
    for index, ref in enumerate(refs):
        if out_of_time():
            results[index] = UploadResult(
                source=ref, outcome=UploadOutcome.RETRY, reason="out of time in this run"
            )
            continue
        try:
            accepted = accept_upload(ref, ports)
        except Exception as exc:
            logger.exception("Could not accept an upload; it will be retried", extra={"key": ref.key})
            results[index] = UploadResult(source=ref, outcome=UploadOutcome.RETRY, reason=describe_error(exc))
            continue
        if isinstance(accepted, UploadResult):
            results[index] = accepted
        elif accepted[0].parts:
            results[index] = submit_parts(accepted[0], ports)
        else:
            job, profile = accepted
            ready[(profile.name, profile.provider)].append((index, job, profile))
    for group in ready.values():
        outcomes = submit_jobs(
            [job for _, job, _ in group], group[0][2], ports, out_of_time=out_of_time, time_left=time_left
        )
        for (index, _, _), outcome in zip(group, outcomes, strict=True):
            results[index] = outcome
    return [result for result in results if result is not None]


def submit_jobs(
    jobs: list[Job],
    profile: Profile,
    ports: PipelinePorts,
    *,
    out_of_time: Callable[[], bool] = lambda: False,
    time_left: TimeLeft = lambda: None,
) -> list[UploadResult]:
    """Submit claimed, prepared ACCEPTED jobs of one profile; one result per job, in order."""
    if profile.mode == "realtime":
        return _stream_or_route(jobs, profile, ports, out_of_time, time_left)
    provider = ports.provider(profile.provider)
    size = max(provider.max_files_per_task, 1)
    results: list[UploadResult] = []

    def keep_trying() -> bool:
        # Recording a provider's answer outlasts a job-store outage for as long as this run may.
        return not out_of_time()

    for start in range(0, len(jobs), size):
        chunk = jobs[start : start + size]
        try:
            results.extend(_submit_chunk(chunk, profile, provider, ports, keep_trying))
        except Exception as exc:
            # Before any attempt started (e.g. the job store is down): nothing reached the provider.
            logger.exception(
                "Submitting failed before the provider was called", extra={"uploads": len(chunk)}
            )
            for job in chunk:
                release_quietly(job, ports)
            results.extend(_retry(job, exc) for job in chunk)
    return results


def _stream_or_route(
    jobs: list[Job],
    profile: Profile,
    ports: PipelinePorts,
    out_of_time: Callable[[], bool],
    time_left: TimeLeft,
) -> list[UploadResult]:
    """Real-time mode (pipeline/realtime.py): each upload streamed by this worker; a refused stream
    recorded as any refused submission is; uploads too long to stream routed and submitted to file
    transcription as a batch profile's uploads are."""
    outcomes = stream_jobs(jobs, profile, ports, out_of_time=out_of_time, time_left=time_left)
    batch = profile.batch_profile()
    handed = {
        o.job.id: _guarded(o.job, ports, lambda job: _prepare(job, batch, ports))
        for o in outcomes
        if o.to_batch
    }
    ready = [prepared[0] for prepared in handed.values() if isinstance(prepared, tuple)]
    batched = dict(zip([job.id for job in ready], submit_jobs(ready, batch, ports), strict=True))
    provider = ports.provider(profile.provider)
    results = []
    for outcome in outcomes:
        job = outcome.job
        if outcome.to_batch:
            prepared = handed[job.id]
            results.append(prepared if isinstance(prepared, UploadResult) else batched[job.id])
        elif outcome.failed is not None:
            record = partial(_unsuccessful, exc=outcome.failed, provider=provider, ports=ports)
            results.append(_guarded(job, ports, record))
        else:
            assert outcome.result is not None
            results.append(outcome.result)
    return results


def _guarded(job: Job, ports: PipelinePorts, step: Callable[[Job], T]) -> T | UploadResult:
    """``step(job)``, or RETRY when it raises: one upload's error never fails the others' delivery."""
    try:
        return step(job)
    except Exception as exc:
        logger.exception("Handling an upload failed; it will be retried", extra={"job_id": job.id})
        release_quietly(job, ports)
        return _retry(job, exc)


def _submit_chunk(
    jobs: list[Job],
    profile: Profile,
    provider: Provider,
    ports: PipelinePorts,
    keep_trying: Callable[[], bool],
) -> list[UploadResult]:
    results: dict[str, UploadResult] = {}
    started: list[tuple[Job, SubmitItem]] = []
    now = ports.clock()
    for job in jobs:
        if (exhausted := provider_jobs_exhausted(job, ports.limits.max_provider_jobs)) is not None:
            results[job.id] = reject(job, exhausted, ports)
            continue
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
            results[job.id] = UploadResult(
                source=job.source,
                outcome=UploadOutcome.DUPLICATE,
                job_id=job.id,
                reason="taken over by another worker",
            )
            continue
        started.append(
            (
                begun,
                SubmitItem(
                    job_id=job.id, media_url=media_url, callback_url=_callback_url(begun, provider, ports)
                ),
            )
        )
    if started:
        outcomes = _call_provider(started, profile, provider, ports, keep_trying)
        for job, outcome in zip([j for j, _ in started], outcomes, strict=True):
            results[job.id] = outcome
    return [results[job.id] for job in jobs]


def _call_provider(
    started: list[tuple[Job, SubmitItem]],
    profile: Profile,
    provider: Provider,
    ports: PipelinePorts,
    keep_trying: Callable[[], bool],
) -> list[UploadResult]:
    items = [item for _, item in started]
    try:
        receipts = provider.submit(items, profile)
    except ProviderError as exc:
        return [_unsuccessful(job, exc, provider, ports) for job, _ in started]
    except Exception as exc:
        # An error inside the SDK after the request may have gone out: treat it as ambiguous.
        logger.exception("The provider call failed unexpectedly", extra={"uploads": len(items)})
        error = ProviderError("SUBMIT_FAILED", describe_error(exc), retryable=True, maybe_done=True)
        return [_unsuccessful(job, error, provider, ports) for job, _ in started]
    return _record_receipts(started, receipts, provider, ports, keep_trying)


def _record_receipts(
    started: list[tuple[Job, SubmitItem]],
    receipts: list[SubmitReceipt],
    provider: Provider,
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
    return [_record_one(job, item, by_job.get(job.id), provider, ports, keep_trying) for job, item in started]


def _record_one(
    job: Job,
    item: SubmitItem,
    receipt: SubmitReceipt | None,
    provider: Provider,
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
    job: Job, item: SubmitItem, receipt: SubmitReceipt | None, provider: Provider, ports: PipelinePorts
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


def _unsuccessful(job: Job, exc: ProviderError, provider: Provider, ports: PipelinePorts) -> UploadResult:
    now = ports.clock()
    limits = ports.limits
    error = exc.as_job_error()
    if exc.maybe_done:
        # The provider may hold a task for this attempt: find out before submitting again.
        wait = limits.search_delay if provider.can_search_tasks else limits.evidence_wait
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


def continue_accepted(
    jobs: list[Job],
    ports: PipelinePorts,
    *,
    out_of_time: Callable[[], bool] = lambda: False,
    time_left: TimeLeft = lambda: None,
) -> list[UploadResult]:
    """The reconciler's share of submitting: due ACCEPTED jobs (refused before, a dead worker's,
    an abandoned or expired attempt, a re-drive) are claimed, checked and submitted again."""
    ready: dict[tuple[str, str], list[tuple[Job, Profile]]] = defaultdict(list)
    results: list[UploadResult] = []
    for job in jobs:
        claimed = _guarded(job, ports, lambda current: _reclaim(current, ports))
        if isinstance(claimed, UploadResult):
            results.append(claimed)
        elif claimed is not None:
            ready[(claimed[1].name, claimed[1].provider)].append(claimed)
    for group in ready.values():
        results.extend(
            submit_jobs(
                [job for job, _ in group], group[0][1], ports, out_of_time=out_of_time, time_left=time_left
            )
        )
    return results


def _reclaim(job: Job, ports: PipelinePorts) -> tuple[Job, Profile] | UploadResult | None:
    now = ports.clock()
    owner = new_owner()
    claimed = apply(
        ports.jobs, job, partial(Job.claim, now=now, until=now + ports.limits.claim_lease, owner=owner)
    )
    if claimed is None:
        return None
    profile = ports.profiles.find(claimed.profile) or ports.profiles.match(
        ports.layout.relative(claimed.source.key)
    )
    if not upload_unchanged(claimed, ports):
        return reject(claimed, UPLOAD_GONE, ports)
    return _prepare(claimed, profile.serving(claimed.provider), ports)


def _prepare(job: Job, profile: Profile, ports: PipelinePorts) -> tuple[Job, Profile] | UploadResult:
    """A claimed job's media made ready for ``profile``'s provider (``prepare_media``): the job to
    submit, or what became of it (refused; a split upload's parts submitted)."""
    kind = kind_by_extension(job.source.key)
    try:
        if kind is None:
            raise Rejection("NOT_MEDIA", "the file extension is not an audio or video type")
        prepared = prepare_media(job, kind, profile, ports)
    except Rejection as rejection:
        return reject(job, rejection.error, ports)
    except Exception:
        release(job, ports)
        raise
    return submit_parts(prepared, ports) if prepared.parts else (prepared, profile)


def submit_parts(parent: Job, ports: PipelinePorts) -> UploadResult:
    """Submit the parts of a split upload that are due (all of them, just after the split); the
    upload counts as SUBMITTED when every part is, and is otherwise carried on by the reconciler."""
    due = [job for job in ensure_part_jobs(parent, ports) if job.state is JobState.ACCEPTED]
    outcomes = [result.outcome for result in continue_accepted(due, ports)]
    if all(outcome is UploadOutcome.SUBMITTED for outcome in outcomes):
        return UploadResult(source=parent.source, outcome=UploadOutcome.SUBMITTED, job_id=parent.id)
    waiting = sum(outcome is not UploadOutcome.SUBMITTED for outcome in outcomes)
    return _deferred(parent, f"{waiting} of its {len(parent.parts)} parts are not submitted yet")


def _media_url(job: Job, ports: PipelinePorts) -> str:
    expires = ports.limits.presign_expiry_s
    if job.media_key:
        # Our extracted track: one key per upload revision, so no version is needed.
        return ports.storage.presign_get(job.source.bucket, job.media_key, expires_s=expires)
    return ports.storage.presign_get(
        job.source.bucket, job.source.key, expires_s=expires, version_id=job.source.version_id
    )


def _callback_url(job: Job, provider: Provider, ports: PipelinePorts) -> str | None:
    if not provider.accepts_callback_url:
        return None
    attempt = job.attempts[-1]
    expires = attempt.started_at + ports.limits.callback_token_ttl
    return ports.signer.sis_callback_url(ports.callback_base_url, job.id, attempt.number, expires)


def _deferred(job: Job, reason: str) -> UploadResult:
    return job_result(job, UploadOutcome.DEFERRED, reason)


def _retry(job: Job, exc: Exception) -> UploadResult:
    return job_result(job, UploadOutcome.RETRY, describe_error(exc))


__all__ = [
    "NEVER_SUBMITTED",
    "UploadOutcome",
    "UploadResult",
    "continue_accepted",
    "fail_job",
    "submit_uploads",
]
