"""Use case, first half: an upload → a claimed job whose media is checked and ready to send.

Decides what is not ours (SKIPPED, with the reason logged), what this exact upload already has
a job for (DUPLICATE), what is bad input (REJECTED: a FAILED job and ``<key>.error.json`` say
why), and claims the rest for this worker.
"""

from __future__ import annotations

import threading
from enum import StrEnum
from functools import partial

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from bucketscribe.domain.job import Job, JobError, JobState, StreamMetrics
from bucketscribe.domain.media_routing import (
    MediaProbe,
    MediaRefused,
    MediaRequirements,
    Route,
    RouteDecision,
    decide_route,
)
from bucketscribe.domain.media_sniff import SNIFF_BYTES, MediaKind, kind_by_extension, sniff
from bucketscribe.domain.profile import Profile
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.pipeline.steps.failures import (
    error_report_missing,
    fail_job,
    output_keys_fit,
    write_error_report,
)
from bucketscribe.pipeline.steps.job_writes import apply, new_owner
from bucketscribe.pipeline.steps.parts import resume_parts, split_upload
from bucketscribe.pipeline.steps.revisions import is_same_upload
from bucketscribe.ports.media_tools import MediaError
from bucketscribe.ports.storage import ObjectUnreadable

logger = Logger(child=True)
# Uploads are taken side by side, but their media is made one at a time: the function's scratch
# space holds two of the largest part (BUCKETSCRIBE_MAX_PART_BYTES) and its memory one decoder.
MAKING_MEDIA = threading.Lock()


class UploadOutcome(StrEnum):
    SUBMITTED = "SUBMITTED"  # a provider task is running for it
    DEFERRED = "DEFERRED"  # its job is recorded; the reconciler carries it on (busy provider, lost answer)
    WAITING = "WAITING"  # its job is recorded, queued for a provider whose quota is full
    SKIPPED = "SKIPPED"  # not ours: outside the input prefix, our own output, not media by name
    DUPLICATE = "DUPLICATE"  # this exact upload already has a job, in the hands of someone else
    REJECTED = "REJECTED"  # bad input: FAILED job + error report
    RETRY = "RETRY"  # nothing durable happened: the notification must be delivered again
    DONE = "DONE"  # streamed and its outputs written in this run (real-time mode)
    SUPERSEDED = "SUPERSEDED"  # a later upload of the key replaced it: nothing written


class UploadResult(BaseModel):
    source: ObjectRef
    outcome: UploadOutcome
    job_id: str | None = None
    reason: str | None = None
    # Real-time mode: how the upload's stream went (first/last-package delays), for the metrics.
    stream: StreamMetrics | None = None


def job_result(job: Job, outcome: UploadOutcome, reason: str) -> UploadResult:
    return UploadResult(source=job.source, outcome=outcome, job_id=job.id, reason=reason)


class JobExists(Exception):
    """A draft's job is stored already (another delivery of the upload's event made it)."""


class Rejection(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error = JobError(code=code, message=message)


def accept_upload(ref: ObjectRef, ports: PipelinePorts) -> UploadResult | tuple[Job, Profile]:
    """Skip what is not ours, draft the upload's job and check its media (nothing is stored yet:
    the job is created with its first attempt's intent, or with its failure, in one write)."""
    layout = ports.layout
    if layout.is_output(ref.key):
        return _skip(ref, "the key is under the output prefix (our own result)")
    if not layout.is_input(ref.key):
        return _skip(ref, f"the key is outside the input prefix {layout.input_prefix!r}")
    kind = kind_by_extension(ref.key)
    if kind is None:
        return _skip(ref, "the file extension is not an audio or video type")
    if ref.size is None or ref.etag is None:
        # The event does not say which upload it announces: the bucket does. (An event that says
        # is trusted: were the key uploaded again since, that upload's own event follows, and the
        # outputs go to whichever upload stands under the key when they are written.)
        info = ports.storage.head(ref.bucket, ref.key)
        if info is None:
            return _skip(ref, "the object no longer exists")
        ref = ref.model_copy(update={"size": info.size, "etag": info.etag, "version_id": info.version_id})
    profile = ports.profiles.match(layout.relative(ref.key))
    draft = draft_job(ref, profile, ports)
    if not output_keys_fit(ref.key, ports):
        return reject(draft, Rejection("KEY_TOO_LONG", _too_long(ref, ports)).error, ports)
    profile = profile.serving(draft.provider)
    try:
        return prepare_media(draft, kind, profile, ports), profile
    except Rejection as rejection:
        return reject(draft, rejection.error, ports)
    except JobExists:
        return already_there(draft, ports)
    except Exception:
        if ports.storage.head(ref.bucket, ref.key) is None:
            return _skip(ref, "the object no longer exists")
        raise


def draft_job(ref: ObjectRef, profile: Profile, ports: PipelinePorts) -> Job:
    """This upload's job as this worker prepares it, not stored yet (``Job.drafted_by``)."""
    now = ports.clock()
    fresh = Job.for_upload(
        ref,
        profile=profile.name,
        provider=profile.provider,
        model=ports.provider(profile.provider).model_name(profile),
        now=now,
    )
    return fresh.drafted_by(now, until=now + ports.limits.claim_lease, owner=new_owner())


def already_there(draft: Job, ports: PipelinePorts) -> UploadResult:
    """A draft whose job exists already: another delivery of the upload's event got there first,
    and that job's worker (or the reconciler) carries it on."""
    current = ports.jobs.get(draft.id)
    if current is not None and current.state is JobState.FAILED and error_report_missing(current, ports):
        # The earlier run may have died between marking the job and writing its report.
        write_error_report(current, ports)
    state = _described(current)
    logger.info("Duplicate upload event", extra={"key": draft.source.key, "job_id": draft.id, "state": state})
    return UploadResult(source=draft.source, outcome=UploadOutcome.DUPLICATE, job_id=draft.id, reason=state)


def _described(job: Job | None) -> str:
    if job is None:
        return "unknown"
    if job.state in (JobState.ACCEPTED, JobState.SUBMITTING) and job.claimed_until is not None:
        return f"{job.state.value.lower()} by another worker"
    return job.state.value


def release(job: Job, ports: PipelinePorts) -> None:
    """Give up a claim, so that the next delivery or the reconciler takes the job up soon (a draft
    is stored so, for the reconciler to find)."""
    now = ports.clock()
    retry_at = now + ports.limits.submit_retry_after
    apply(ports.jobs, job, partial(Job.release, now=now, retry_at=retry_at, owner=job.claimed_by or ""))


def release_quietly(job: Job, ports: PipelinePorts) -> None:
    """``release`` an ACCEPTED job after an error whose delivery comes again, never raising: an
    unreleased claim runs out. A draft holds nothing stored: the next delivery starts afresh."""
    try:
        if job.state is JobState.ACCEPTED and not job.draft:
            release(job, ports)
    except Exception:
        logger.exception("Could not release a claim; it runs out by itself", extra={"job_id": job.id})


def upload_unchanged(job: Job, ports: PipelinePorts) -> bool:
    """Whether the exact upload the job is for (its version, or its ETag) is still in the bucket."""
    info = ports.storage.head(job.source.bucket, job.source.key)
    return info is not None and is_same_upload(job.source, info)


def upload_unreadable(refused: ObjectUnreadable) -> JobError:
    """The error of a job whose upload the store will not let us read (permissions, SSE-C)."""
    return JobError(
        code="UPLOAD_UNREADABLE",
        message=f"the upload cannot be read (HTTP {refused.status}): it is encrypted with a key of its "
        "uploader's (SSE-C); upload it without one and the new upload is transcribed",
    )


UPLOAD_GONE = JobError(
    code="UPLOAD_GONE",
    message="the upload was deleted or replaced before it could be transcribed; a replacement gets "
    "a job of its own",
)


def prepare_media(job: Job, kind: MediaKind, profile: Profile, ports: PipelinePorts) -> Job:
    """Check the upload is media within limits, decide how it reaches the provider (as it is, its
    audio copied into another container, re-encoded, or cut into parts: ``media.routing``) and
    make what that needs. A split upload's job comes back SUBMITTED with its parts."""
    if job.part_of is not None:
        return job  # a part was made to fit its provider
    if job.parts:
        return resume_parts(job, ports)  # a split upload's job, re-driven
    needs = ports.provider(profile.provider).media_requirements(profile)
    if ports.limits.max_part_bytes is not None:
        needs = needs.model_copy(update={"made_max_bytes": ports.limits.max_part_bytes})
    tools = ports.media_tools if ports.media_tools is not None and ports.media_tools.converts else None
    try:
        probe = job.media or _probe(job, kind, ports)  # probed by an earlier run
        decision = job.media_route  # decided by an earlier attempt
        if decision is None:
            decision = decide_route(probe, needs, mode=profile.extract_audio, can_convert=tools is not None)
        heavy = decision.part_ms is not None or (
            decision.route is not Route.PASS_THROUGH and decision.target is not None
        )
        if job.draft and heavy and ports.jobs.get(job.id) is not None:
            # Cutting or converting costs far more than this one read: not for a duplicate event.
            raise JobExists(job.id)
        if decision.part_ms is not None and tools is not None:
            with MAKING_MEDIA:
                return split_upload(job, probe, decision, needs, tools, ports)
        media_key = _media_for_provider(job, decision, needs, ports)
    except MediaRefused as refused:
        raise Rejection(refused.code, str(refused)) from refused
    except MediaError as exc:
        raise Rejection("NO_AUDIO", f"no usable audio track: {exc}") from exc
    return _routed(job, probe, decision, media_key, ports)


def _routed(
    job: Job, probe: MediaProbe, decision: RouteDecision, media_key: str | None, ports: PipelinePorts
) -> Job:
    """The job with its probe, route and media; written now where media was made for it."""
    if job.media == probe and job.media_route == decision and job.media_key == media_key:
        return job
    logger.info(
        "Media routed",
        extra={
            "job_id": job.id,
            "key": job.source.key,
            "route": decision.route.value,
            "why": decision.reason,
        },
    )
    routed = job.model_copy(update={"media": probe, "media_route": decision, "media_key": media_key})
    if media_key is None or job.draft:
        # Nothing was made that a retry could reuse, or the job is not stored yet: the probe and
        # the media are written with the attempt.
        return routed
    recorded = apply(
        ports.jobs,
        job,
        partial(
            Job.with_media,
            now=ports.clock(),
            probe=probe,
            route=decision,
            media_key=media_key,
            owner=job.claimed_by or "",
        ),
    )
    return recorded or routed


def _probe(job: Job, kind: MediaKind, ports: PipelinePorts) -> MediaProbe:
    """What the upload holds: its first bytes always (is it media at all? a WAV header says all),
    then PyAV where installed and needed (over a presigned URL: only what it needs is read)."""
    ref, limits = job.source, ports.limits
    size = ref.size or 0
    if size == 0:
        raise Rejection("EMPTY_FILE", "the file is empty (0 bytes)")
    head = ports.storage.read_head(ref.bucket, ref.key, SNIFF_BYTES)
    sniffed = sniff(head, total_size=size)
    if sniffed is None:
        looks = "text" if _looks_like_text(head) else "unknown binary data"
        raise Rejection(
            "NOT_MEDIA",
            f"the content is not audio or video (the first bytes look like {looks}), "
            f"although the name ends in {ref.key.rsplit('.', 1)[-1]!r}",
        )
    if size > limits.max_media_bytes:
        raise Rejection(
            "FILE_TOO_LARGE",
            f"the file is {size / 1e6:.1f} MB; the limit is {limits.max_media_bytes / 1e6:.0f} MB",
        )
    probe = MediaProbe.from_header(sniffed, size=size, kind=kind)
    if ports.media_tools is not None and ports.media_tools.converts and not probe.complete:
        probe = ports.media_tools.probe(ref)  # MediaError: no usable audio
    if probe.duration_ms is not None and probe.duration_ms > limits.max_media_duration_s * 1000:
        raise Rejection(
            "AUDIO_TOO_LONG",
            f"the audio lasts {probe.duration_ms / 3_600_000:.2f} h; "
            f"the limit is {limits.max_media_duration_s / 3600:.1f} h",
        )
    return probe


def _media_for_provider(
    job: Job, decision: RouteDecision, needs: MediaRequirements, ports: PipelinePorts
) -> str | None:
    """The object the provider is sent when it is not the upload: made now, or by an earlier
    attempt that did not get as far as submitting."""
    if decision.route is Route.PASS_THROUGH or decision.target is None:
        return None
    key = speech_track_key(job, decision.target.extension, ports)
    if job.media_key == key and ports.storage.head(job.source.bucket, key) is not None:
        return key
    assert ports.media_tools is not None  # decide_route converts only where it can
    with MAKING_MEDIA:
        made = ports.media_tools.write(job.source, key, decision.target)
    logger.info(
        "Made the audio for the provider",
        extra={
            "job_id": job.id,
            "key": job.source.key,
            "bytes_in": job.source.size,
            "bytes_out": made.output_bytes,
        },
    )
    if made.output_bytes > needs.made_limit:
        raise MediaRefused(
            "FILE_TOO_LARGE",
            f"the audio made for {needs.provider} is {made.output_bytes / 2**20:.0f} MB; "
            f"it takes at most {needs.made_limit / 2**20:.0f} MB",
        )
    return key


def speech_track_key(job: Job, extension: str, ports: PipelinePorts) -> str:
    """Where the audio made for the provider goes: one per upload revision (the job id names it)."""
    return ports.layout.output_key(job.source.key, f"{job.id[:12]}.speech.{extension}")


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\t\r\n")
    return bool(text) and printable / len(text) > 0.95


def _too_long(ref: ObjectRef, ports: PipelinePorts) -> str:
    size = len(ref.key.encode("utf-8"))
    return (
        f"the key is {size} bytes long; with the output prefix and suffixes its transcript keys would "
        "exceed the storage's 1 024-byte key limit (shorten the file name or the folders)"
    )


def reject(job: Job, error: JobError, ports: PipelinePorts) -> UploadResult:
    failed = fail_job(job, error, ports)
    if failed is None and job.draft:
        return already_there(job, ports)
    if failed is None:
        outcome = UploadOutcome.DUPLICATE
    elif failed.state is JobState.SUPERSEDED:
        outcome = UploadOutcome.SUPERSEDED
    else:
        outcome = UploadOutcome.REJECTED
    return UploadResult(source=job.source, outcome=outcome, job_id=job.id, reason=error.message)


def _skip(ref: ObjectRef, reason: str) -> UploadResult:
    logger.info("Skipped upload", extra={"key": ref.key, "bucket": ref.bucket, "reason": reason})
    return UploadResult(source=ref, outcome=UploadOutcome.SKIPPED, reason=reason)
