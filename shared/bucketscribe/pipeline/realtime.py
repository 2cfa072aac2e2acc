"""Use case, real-time mode: the submit worker streams each upload itself and writes its outputs.

A profile with ``mode: realtime`` (provider ``dashscope-realtime``: gummy, optionally translating,
or Paraformer real-time) sends no file task and waits for no callback. The worker decodes the
upload, streams it (each channel on its own stream for a call) and writes every output through
the same finishing path as any other job: under the finishing lease, once. In the job's terms::

    ACCEPTED ─start_attempt─> SUBMITTING (attempt n = the stream) ─bind_task─> SUBMITTED ─finalize─> DONE

- The stream is an attempt. Its intent is durable before the first frame is sent, with a lease
  at least as long as the stream may take. When it ends, its task id(s) and its first- and
  last-package delays are bound to the attempt; the outputs are written at once after that.
- A stream the service refused (bad parameters, a bad key) fails the job with the service's code;
  one that broke for a passing reason (the connection, the service's 23 s idle rule, no answer) is
  an attempt refused for now and is retried with backoff, as a busy provider is
  (``submit._unsuccessful``, at most ``max_submit_attempts`` times).
- There is nothing to look up for a stream: no task listing, no callback, and its results went
  only to the worker that streamed it. So a worker that dies mid-stream leaves an attempt that the
  reconciler abandons as soon as the lease has run out (``evidence.py``), and the upload is
  streamed again. That is the residual cost of this mode: the interrupted stream was paid for and
  so is the next. A worker that dies after the stream but before the outputs are written leaves a
  bound task that the provider cannot show (``fetch``: NOT_FOUND), and the reconciler streams once
  more. Both are bounded: after ``MAX_STREAM_RESTARTS`` interrupted streams the job fails
  (``STREAM_INTERRUPTED``) rather than pay again.
- An upload whose audio would not stream within ``Limits.realtime_budget`` (the function's time,
  counting the worst case of a service that keeps pace with real time) is refused for this mode
  with the reason, or, when the profile says ``longer_uploads: batch``, handed to DashScope file
  transcription: the job's provider changes before any attempt, and the batch path carries it on.

The uploads of one run stream at once (up to ``MAX_PARALLEL_STREAMS``), so a batch of them takes
about as long as its longest.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

from aws_lambda_powertools import Logger

from bucketscribe.job import AttemptState, Job, JobError, JobState
from bucketscribe.media.transcode import MediaError, SpeechPcm, decode_pcm16
from bucketscribe.pipeline.complete import CompletionOutcome, finalize
from bucketscribe.pipeline.intake import Rejection, UploadOutcome, UploadResult, reject, release
from bucketscribe.pipeline.job_writes import apply
from bucketscribe.pipeline.ports import PipelinePorts
from bucketscribe.profiles import Profile
from bucketscribe.providers.base import ProviderError, StreamedRecording, StreamingProvider

logger = Logger(child=True)

# Streams of one upload that may be cut short (its worker died) before the job fails instead.
MAX_STREAM_RESTARTS = 2
# Beyond the audio's own length: connecting, the service's tail after the last frame, the outputs.
STREAM_OVERHEAD = timedelta(seconds=15)
MAX_PARALLEL_STREAMS = 8
INTERRUPTED = "STREAM_INTERRUPTED"
TOO_LONG = "TOO_LONG_FOR_REALTIME"


@dataclass(frozen=True)
class StreamOutcome:
    """What became of one job: a result, a stream the provider refused (``failed``: the caller
    records it as it records any refused submission), or ``to_batch``: submit it to file
    transcription instead."""

    job: Job
    result: UploadResult | None = None
    failed: ProviderError | None = None
    to_batch: bool = False


def stream_jobs(
    jobs: list[Job], profile: Profile, ports: PipelinePorts, *, out_of_time: Callable[[], bool]
) -> list[StreamOutcome]:
    """Stream claimed, prepared ACCEPTED jobs of a real-time profile; one outcome per job, in order."""
    provider = ports.provider(profile.provider)
    if not isinstance(provider, StreamingProvider):
        raise LookupError(f"provider {profile.provider!r} cannot stream (profile {profile.name!r})")
    if not jobs:
        return []
    with ThreadPoolExecutor(
        max_workers=min(len(jobs), MAX_PARALLEL_STREAMS), thread_name_prefix="realtime"
    ) as pool:
        return list(pool.map(lambda job: _stream_job(job, profile, provider, ports, out_of_time), jobs))


def _stream_job(
    job: Job,
    profile: Profile,
    provider: StreamingProvider,
    ports: PipelinePorts,
    out_of_time: Callable[[], bool],
) -> StreamOutcome:
    if job.provider != profile.provider:  # handed to file transcription by an earlier run
        return StreamOutcome(job=job, to_batch=True)
    try:
        if out_of_time():
            release(job, ports)
            return StreamOutcome(
                job=job, result=_result(job, UploadOutcome.DEFERRED, "out of time in this run")
            )
        interrupted = job.attempts_in(AttemptState.ABANDONED, AttemptState.EXPIRED)
        if interrupted >= MAX_STREAM_RESTARTS:
            error = JobError(
                code=INTERRUPTED,
                message=f"{interrupted} streams of this upload were cut short (their workers stopped); "
                f"not streamed again, to pay no more. Re-drive it with `bucketscribe redrive {job.id}`",
                retryable=True,
            )
            return StreamOutcome(job=job, result=reject(job, error, ports))
        speech = _speech(job, profile, ports)
        if speech is None:
            return _too_long(job, profile, ports)
        return _stream(job, speech, profile, provider, ports)
    except Rejection as rejection:
        return StreamOutcome(job=job, result=reject(job, rejection.error, ports))
    except Exception as exc:
        logger.exception("Streaming an upload failed unexpectedly", extra={"job_id": job.id})
        if job.state is JobState.ACCEPTED:
            _release_quietly(job, ports)
        return StreamOutcome(
            job=job, result=_result(job, UploadOutcome.RETRY, f"{type(exc).__name__}: {exc}")
        )


def stream_time(audio_ms: int) -> timedelta:
    """How long streaming this much audio may take at worst: a service that keeps pace with real time."""
    return timedelta(milliseconds=audio_ms) + STREAM_OVERHEAD


def _speech(job: Job, profile: Profile, ports: PipelinePorts) -> SpeechPcm | None:
    """The upload decoded to 16 kHz PCM; None when it is too long to stream within the budget
    (known from its probe before anything is downloaded, where the probe knows its length)."""
    budget = ports.limits.realtime_budget
    known_ms = job.media.duration_ms if job.media is not None else None
    if known_ms is not None and stream_time(known_ms) > budget:
        return None
    source = job.source
    info = ports.storage.head(source.bucket, source.key)
    if info is None or (info.version_id or info.etag) != source.revision:
        raise Rejection(
            "UPLOAD_GONE",
            "the upload was deleted or replaced before it could be streamed; a replacement "
            "gets a job of its own",
        )
    with tempfile.TemporaryDirectory(prefix="bucketscribe-") as folder:
        local = Path(folder) / "audio"
        ports.storage.download(source.bucket, job.media_key or source.key, local)
        try:
            speech = decode_pcm16(local, split_channels=profile.realtime.channels == "split")
        except MediaError as exc:
            raise Rejection("NO_AUDIO", f"no usable audio track: {exc}") from exc
        except ImportError as exc:  # no PyAV in this deployment: only a 16 kHz PCM WAV streams
            raise Rejection(
                "UNSUPPORTED_MEDIA",
                "real-time mode streams 16 kHz 16-bit PCM, and this deployment has no decoder "
                f"(PyAV) to make it from {_described(job)}: upload a 16 kHz 16-bit WAV (mono, or "
                "stereo for a profile that splits the channels), or use a batch profile",
            ) from exc
    return None if stream_time(speech.duration_ms) > budget else speech


def _described(job: Job) -> str:
    media = job.media
    if media is None:
        return "this upload"
    rate = f", {media.sample_rate} Hz" if media.sample_rate else ""
    channels = {None: "", 1: ", mono"}.get(media.channels, f", {media.channels} channels")
    return f"{media.codec or 'its audio'} in {media.container}{rate}{channels}"


def _too_long(job: Job, profile: Profile, ports: PipelinePorts) -> StreamOutcome:
    longest = ports.limits.realtime_budget - STREAM_OVERHEAD
    if profile.realtime.longer_uploads == "batch":
        now = ports.clock()
        batch = profile.batch_profile()
        routed = apply(
            ports.jobs,
            job,
            partial(
                Job.route_to,
                now=now,
                provider=batch.provider,
                model=batch.model_name,
                owner=job.claimed_by or "",
            ),
        )
        if routed is None:
            return StreamOutcome(
                job=job, result=_result(job, UploadOutcome.DUPLICATE, "taken over by another worker")
            )
        logger.info(
            "Too long to stream: handed to file transcription",
            extra={"job_id": job.id, "key": job.source.key, "provider": batch.provider},
        )
        return StreamOutcome(job=routed, to_batch=True)
    error = JobError(
        code=TOO_LONG,
        message=f"the audio is too long for real-time mode, which streams at most about "
        f"{longest.total_seconds():g} s of audio per upload within the function's time; upload it "
        "under a batch profile, or set longer_uploads: batch in this profile",
    )
    return StreamOutcome(job=job, result=reject(job, error, ports))


def _stream(
    job: Job, speech: SpeechPcm, profile: Profile, provider: StreamingProvider, ports: PipelinePorts
) -> StreamOutcome:
    now = ports.clock()
    # Until the lease runs out nobody takes the job over: at least as long as the stream may take.
    lease = max(ports.limits.claim_lease, stream_time(speech.duration_ms))
    begun = apply(
        ports.jobs,
        job,
        partial(Job.start_attempt, now=now, lease_until=now + lease, owner=job.claimed_by or ""),
    )
    if begun is None:
        return StreamOutcome(
            job=job, result=_result(job, UploadOutcome.DUPLICATE, "taken over by another worker")
        )
    try:
        recording = provider.stream(speech, profile)
    except ProviderError as exc:
        return StreamOutcome(job=begun, failed=exc)
    except Exception as exc:  # inside the SDK: the stream broke, nothing of it is kept
        logger.exception("The stream failed unexpectedly", extra={"job_id": job.id})
        return StreamOutcome(
            job=begun, failed=ProviderError("STREAM_FAILED", f"{type(exc).__name__}: {exc}", retryable=True)
        )
    try:
        return _write(begun, recording, ports)
    except Exception:
        # The stream's result is lost with this run; the reconciler streams again (bounded).
        logger.exception("Could not record a finished stream", extra={"job_id": job.id})
        return StreamOutcome(
            job=begun, result=_result(job, UploadOutcome.DEFERRED, "the stream ended but was not recorded")
        )


def _write(begun: Job, recording: StreamedRecording, ports: PipelinePorts) -> StreamOutcome:
    """Bind the finished stream to its attempt, then write the outputs (the finishing path)."""
    job = begun
    number = begun.attempts[-1].number
    ended = ports.clock()
    bound = apply(
        ports.jobs,
        begun,
        partial(
            Job.bind_task,
            now=ended,
            number=number,
            task_id=recording.task_id,
            provider_file=None,
            # Looked at by the reconciler only if this worker stops before the outputs are written.
            check_at=ended + ports.limits.finish_lease,
            bound_by="stream",
            stream=recording.metrics,
        ),
    )
    if bound is None:
        return StreamOutcome(
            job=begun, result=_result(job, UploadOutcome.DUPLICATE, "the job moved on meanwhile")
        )
    logger.info(
        "Streamed",
        extra={
            "job_id": job.id,
            "key": job.source.key,
            "task_id": recording.task_id,
            "attempt": number,
            "first_package_ms": recording.metrics.first_package_ms,
            "last_package_ms": recording.metrics.last_package_ms,
            "audio_ms": recording.metrics.audio_ms,
        },
    )
    completion = finalize(bound, recording.transcript, None, ports)
    done = completion.outcome is CompletionOutcome.DONE
    return StreamOutcome(
        job=completion.job or bound,
        result=UploadResult(
            source=job.source,
            outcome=UploadOutcome.DONE if done else UploadOutcome.DUPLICATE,
            job_id=job.id,
            reason=None if done else f"outputs: {completion.outcome.value}",
            stream=recording.metrics,
        ),
    )


def _result(job: Job, outcome: UploadOutcome, reason: str) -> UploadResult:
    return UploadResult(source=job.source, outcome=outcome, job_id=job.id, reason=reason)


def _release_quietly(job: Job, ports: PipelinePorts) -> None:
    try:
        release(job, ports)
    except Exception:
        logger.exception("Could not release a claim; it runs out by itself", extra={"job_id": job.id})
