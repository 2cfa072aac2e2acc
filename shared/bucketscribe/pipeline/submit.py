"""Use case: uploads → validated jobs → provider tasks.

Every upload ends in exactly one of: SUBMITTED (a provider task is running),
SKIPPED (not ours: outside the input prefix, our own output, not a media file),
DUPLICATE (this exact upload already has a job), REJECTED (bad input: the user
gets ``<key>.error.json`` and a FAILED job saying why), or RETRY (the provider
is busy or down: the message goes back to the queue and nothing is lost).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from enum import StrEnum

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from bucketscribe.media.sniff import SNIFF_BYTES, MediaKind, kind_by_extension, sniff
from bucketscribe.media.transcode import MediaError
from bucketscribe.model import Job, JobError, JobState, ObjectRef
from bucketscribe.pipeline.ports import PipelinePorts
from bucketscribe.profiles import Profile
from bucketscribe.providers.base import ProviderError, SubmitItem, file_key

logger = Logger(child=True)

# The reconciler's code for an upload the queue never got through; a re-drive may retry it.
NEVER_SUBMITTED = "NEVER_SUBMITTED"


class UploadOutcome(StrEnum):
    SUBMITTED = "SUBMITTED"
    SKIPPED = "SKIPPED"
    DUPLICATE = "DUPLICATE"
    REJECTED = "REJECTED"
    RETRY = "RETRY"


class UploadResult(BaseModel):
    source: ObjectRef
    outcome: UploadOutcome
    job_id: str | None = None
    reason: str | None = None


class _Rejection(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error = JobError(code=code, message=message)


def submit_uploads(
    refs: Iterable[ObjectRef], ports: PipelinePorts, *, out_of_time: Callable[[], bool] = lambda: False
) -> list[UploadResult]:
    """Accept and submit ``refs``; one upload's unexpected error never stops the others.

    When ``out_of_time`` says so, uploads not yet accepted are handed back (RETRY) for the
    queue to redeliver, so a batch of long videos still makes progress run after run.
    """
    results: list[UploadResult] = []
    ready: dict[str, list[tuple[Job, Profile]]] = defaultdict(list)
    for ref in refs:
        if out_of_time():
            results.append(
                UploadResult(source=ref, outcome=UploadOutcome.RETRY, reason="out of time in this run")
            )
            continue
        try:
            accepted = _accept(ref, ports)
        except Exception as exc:
            logger.exception("Could not accept an upload; it will be retried", extra={"key": ref.key})
            reason = f"{type(exc).__name__}: {exc}"
            results.append(UploadResult(source=ref, outcome=UploadOutcome.RETRY, reason=reason))
            continue
        if isinstance(accepted, UploadResult):
            results.append(accepted)
        else:
            job, profile = accepted
            ready[profile.name].append((job, profile))
    for group in ready.values():
        try:
            results.extend(_submit_group(group, ports))
        except Exception as exc:
            # _submit_group released the claims; the messages come back and try again.
            logger.exception("Submitting a group failed; it will be retried", extra={"uploads": len(group)})
            reason = f"{type(exc).__name__}: {exc}"
            results.extend(
                UploadResult(source=job.source, outcome=UploadOutcome.RETRY, job_id=job.id, reason=reason)
                for job, _ in group
            )
    return results


def _accept(ref: ObjectRef, ports: PipelinePorts) -> UploadResult | tuple[Job, Profile]:
    """Skip what is not ours, validate the rest, and claim a job for it."""
    layout = ports.layout
    if layout.is_output(ref.key):
        return _skip(ref, "the key is under the output prefix (our own result)")
    if not layout.is_input(ref.key):
        return _skip(ref, f"the key is outside the input prefix {layout.input_prefix!r}")
    kind = kind_by_extension(ref.key)
    if kind is None:
        return _skip(ref, "the file extension is not an audio or video type")
    info = ports.storage.head(ref.bucket, ref.key)
    if info is None:
        return _skip(ref, "the object no longer exists")
    # The head is the truth: an event may lack the ETag/version, or describe an older upload.
    ref = ref.model_copy(update={"size": info.size, "etag": info.etag, "version_id": info.version_id})
    profile = ports.profiles.match(layout.relative(ref.key))
    now = ports.clock()
    lease = now + ports.limits.claim_lease
    job = Job.for_upload(ref, profile=profile.name, provider=profile.provider, model=profile.model_name)
    # Until it is submitted the queue owns the job; the reconciler looks only once the deadline passed.
    job = job.model_copy(
        update={
            "claimed_until": lease,
            "created_at": now,
            "updated_at": now,
            "next_check_at": now + ports.limits.job_deadline,
        }
    )
    if not ports.jobs.create(job):
        existing = ports.jobs.get(job.id)
        if existing is not None and existing.error and existing.error.code == NEVER_SUBMITTED:
            # Re-driven from the dead-letter queue after the reconciler gave up on it: try again.
            reopened = existing.model_copy(
                update={
                    "state": JobState.ACCEPTED,
                    "finished_at": None,
                    "updated_at": now,
                    "next_check_at": now + ports.limits.job_deadline,
                }
            )
            if ports.jobs.replace(reopened, expected=[JobState.FAILED]):
                existing = reopened
        # ACCEPTED and unclaimed: an earlier attempt died or the provider was busy; take it over.
        retaken = existing.model_copy(update={"claimed_until": lease}) if existing else None
        if retaken is None or not ports.jobs.claim(retaken, now=now):
            if existing is not None and existing.state is JobState.FAILED:
                # The earlier attempt may have died between marking it and writing the report.
                error_key = ports.layout.output_key(ref.key, "error.json")
                if ports.storage.head(ref.bucket, error_key) is None:
                    write_error_report(existing, ports)
            state = existing.state.value if existing else "unknown"
            if existing is not None and existing.state is JobState.ACCEPTED:
                state = "being submitted by another worker"
            logger.info("Duplicate upload event", extra={"key": ref.key, "job_id": job.id, "state": state})
            return UploadResult(source=ref, outcome=UploadOutcome.DUPLICATE, job_id=job.id, reason=state)
        job = retaken
    try:
        job = _prepare_media(job, kind, profile, ports)
    except _Rejection as rejection:
        return _reject(job, rejection.error, ports)
    except Exception:
        _release(job, ports)
        raise
    return job, profile


def _release(job: Job, ports: PipelinePorts) -> None:
    """Give up a claim after an unexpected error, so the redelivered message can retry at once."""
    ports.jobs.replace(job.model_copy(update={"claimed_until": None}), expected=[JobState.ACCEPTED])


def _prepare_media(job: Job, kind: MediaKind, profile: Profile, ports: PipelinePorts) -> Job:
    """Check the upload is media within limits; extract its speech track where that helps."""
    ref, limits = job.source, ports.limits
    size = ref.size or 0
    if size == 0:
        raise _Rejection("EMPTY_FILE", "the file is empty (0 bytes)")
    head = ports.storage.read_head(ref.bucket, ref.key, SNIFF_BYTES)
    sniffed = sniff(head, total_size=size)
    if sniffed is None:
        looks = "text" if _looks_like_text(head) else "unknown binary data"
        raise _Rejection(
            "NOT_MEDIA",
            f"the content is not audio or video (the first bytes look like {looks}), "
            f"although the name ends in {ref.key.rsplit('.', 1)[-1]!r}",
        )
    too_big = size > limits.max_media_bytes
    accepted = ports.provider(profile.provider).accepted_containers
    unsupported = accepted is not None and (sniffed.container not in accepted or kind is MediaKind.VIDEO)
    wanted = profile.extract_audio == "always" or (
        profile.extract_audio == "auto" and (kind is MediaKind.VIDEO or unsupported or too_big)
    )
    duration_ms = sniffed.duration_ms
    # Extracted by an earlier attempt that did not get as far as submitting?
    earlier_track = ports.storage.head(ref.bucket, job.media_key) if wanted and job.media_key else None
    if earlier_track is not None:
        size, duration_ms = earlier_track.size, None
    elif wanted and ports.extractor is not None:
        try:
            extracted = ports.extractor.extract(ref, ports.layout.output_key(ref.key, "speech.ogg"))
        except MediaError as exc:
            raise _Rejection("NO_AUDIO", f"no usable audio track: {exc}") from exc
        logger.info(
            "Extracted the speech track",
            extra={"job_id": job.id, "key": ref.key, "bytes_in": size, "bytes_out": extracted.size},
        )
        job = job.model_copy(update={"media_key": extracted.key})
        ports.jobs.replace(job, expected=[JobState.ACCEPTED])  # a retry reuses the extracted track
        size, duration_ms = extracted.size, extracted.duration_ms
    if size > limits.max_media_bytes:
        raise _Rejection(
            "FILE_TOO_LARGE",
            f"the file is {size / 1e6:.1f} MB; the limit is {limits.max_media_bytes / 1e6:.0f} MB",
        )
    if duration_ms is not None and duration_ms > limits.max_media_duration_s * 1000:
        raise _Rejection(
            "AUDIO_TOO_LONG",
            f"the audio lasts {duration_ms / 3_600_000:.2f} h; "
            f"the limit is {limits.max_media_duration_s / 3600:.1f} h",
        )
    return job


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\t\r\n")
    return bool(text) and printable / len(text) > 0.95


def _submit_group(group: list[tuple[Job, Profile]], ports: PipelinePorts) -> list[UploadResult]:
    profile = group[0][1]
    provider = ports.provider(profile.provider)
    results: list[UploadResult] = []
    size = max(provider.max_files_per_task, 1)
    for start in range(0, len(group), size):
        jobs = [job for job, _ in group[start : start + size]]
        items = [
            SubmitItem(
                job_id=job.id,
                media_url=ports.storage.presign_get(
                    job.source.bucket,
                    job.media_key or job.source.key,
                    expires_s=ports.limits.presign_expiry_s,
                ),
                callback_url=(
                    ports.signer.sis_callback_url(ports.callback_base_url, job.id)
                    if provider.accepts_callback_url
                    else None
                ),
            )
            for job in jobs
        ]
        try:
            receipts = provider.submit(items, profile)
        except ProviderError as exc:
            if exc.retryable:
                results.extend(_retry_later(job, exc, ports) for job in jobs)
            else:
                results.extend(_reject(job, exc.as_job_error(), ports) for job in jobs)
            continue
        except Exception:
            for job in jobs:
                _release(job, ports)
            raise
        by_job = {receipt.job_id: receipt for receipt in receipts}
        if not provider.accepts_callback_url:
            # A push names the task, not the files: record what it carries before anything else,
            # since a fast provider may push while the jobs are still being marked submitted.
            task_files: dict[str, dict[str, str]] = defaultdict(dict)
            for item in items:
                receipt = by_job.get(item.job_id)
                if receipt is not None and receipt.task_id is not None:
                    task_files[receipt.task_id][item.job_id] = file_key(item.media_url)
            for task_id, files in task_files.items():
                ports.jobs.record_task(provider.name, task_id, files)
        for job, item in zip(jobs, items, strict=True):
            receipt = by_job.get(job.id)
            if receipt is None or receipt.task_id is None:
                error = (receipt.error if receipt else None) or JobError(
                    code="NO_TASK_ID", message="the provider accepted the request but returned no task id"
                )
                results.append(_reject(job, error, ports))
                continue
            results.append(_mark_submitted(job, receipt.task_id, file_key(item.media_url), ports))
    return results


def _mark_submitted(job: Job, task_id: str, provider_file: str, ports: PipelinePorts) -> UploadResult:
    now = ports.clock()
    submitted = job.model_copy(
        update={
            "state": JobState.SUBMITTED,
            "provider_task_id": task_id,
            "provider_file": provider_file,
            "attempts": job.attempts + 1,
            "submitted_at": now,
            "updated_at": now,
            "next_check_at": now + ports.limits.first_check_after,
            "claimed_until": None,
            "error": None,
        }
    )
    if not ports.jobs.replace(submitted, expected=[JobState.ACCEPTED]):
        # A callback already finished it (fast provider): that is fine.
        logger.info("Job moved on before its submission was recorded", extra={"job_id": job.id})
    logger.info(
        "Submitted",
        extra={"job_id": job.id, "key": job.source.key, "provider": job.provider, "task_id": task_id},
    )
    return UploadResult(source=job.source, outcome=UploadOutcome.SUBMITTED, job_id=job.id)


def _retry_later(job: Job, exc: ProviderError, ports: PipelinePorts) -> UploadResult:
    now = ports.clock()
    retry = job.model_copy(
        update={
            "attempts": job.attempts + 1,
            "updated_at": now,
            "error": exc.as_job_error(),
            "claimed_until": None,
        }
    )
    ports.jobs.replace(retry, expected=[JobState.ACCEPTED])
    logger.warning(
        "Provider busy or unreachable; the upload will be retried",
        extra={"job_id": job.id, "key": job.source.key, "code": exc.code, "provider_message": exc.message},
    )
    return UploadResult(source=job.source, outcome=UploadOutcome.RETRY, job_id=job.id, reason=str(exc))


def _reject(job: Job, error: JobError, ports: PipelinePorts) -> UploadResult:
    fail_job(job, error, ports)
    return UploadResult(
        source=job.source, outcome=UploadOutcome.REJECTED, job_id=job.id, reason=error.message
    )


def fail_job(job: Job, error: JobError, ports: PipelinePorts) -> Job:
    """Mark a job FAILED and leave ``<key>.error.json`` beside where its transcript would be."""
    now = ports.clock()
    failed = job.model_copy(
        update={
            "state": JobState.FAILED,
            "error": error,
            "updated_at": now,
            "finished_at": now,
            "claimed_until": None,
            "next_check_at": None,
        }
    )
    # Only from the state the caller saw: a stale copy must not overwrite newer progress.
    if not ports.jobs.replace(failed, expected=[job.state]):
        return ports.jobs.get(job.id) or failed
    write_error_report(failed, ports)
    logger.warning(
        "Job failed",
        extra={"job_id": job.id, "key": job.source.key, "code": error.code, "reason": error.message},
    )
    return failed


def write_error_report(job: Job, ports: PipelinePorts) -> None:
    """``<key>.error.json``: what failed and why, beside where the transcript would be."""
    error = job.error or JobError(code="UNKNOWN", message="the job failed without a recorded reason")
    report = {
        "source": {"bucket": job.source.bucket, "key": job.source.key, "etag": job.source.etag},
        "job_id": job.id,
        "error": error.model_dump(),
        "failed_at": (job.finished_at or job.updated_at).isoformat(),
    }
    ports.storage.put(
        job.source.bucket,
        ports.layout.output_key(job.source.key, "error.json"),
        json.dumps(report, ensure_ascii=False, indent=2).encode("utf-8"),
        content_type="application/json",
    )


def _skip(ref: ObjectRef, reason: str) -> UploadResult:
    logger.info("Skipped upload", extra={"key": ref.key, "bucket": ref.bucket, "reason": reason})
    return UploadResult(source=ref, outcome=UploadOutcome.SKIPPED, reason=reason)
