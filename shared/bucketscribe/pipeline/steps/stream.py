"""Use case, real-time mode: the submit worker streams each upload itself and writes its outputs.

A profile whose provider streams (a ``StreamingProvider``: recognition as spoken, optionally
translating) sends no file task and waits for no callback. The worker decodes the
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
- A stream starts only if it can end within the run's time left and ``Limits.realtime_budget``,
  and is cut at that time (``STREAM_CUT_AT_DEADLINE``, counted with the interrupted ones) under a
  lease that lasts longer: a slow service never leaves two workers streaming one upload. An upload
  that does not fit what is left of this run is handed back for the next.
- An upload whose audio would not stream within the budget even from a service that keeps pace
  with real time is refused for this mode with the reason, or, when the profile says
  ``longer_uploads: batch``, handed to the file-transcription provider the streaming one names:
  the job's provider changes before any attempt, and the batch path routes its media and carries it on.

The uploads of one run stream at once, up to ``MAX_PARALLEL_STREAMS``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from aws_lambda_powertools import Logger

from bucketscribe.domain.job import AttemptState, Job, JobError, provider_jobs_exhausted
from bucketscribe.domain.profile import Profile
from bucketscribe.pipeline.context import PipelinePorts, TimeLeft
from bucketscribe.pipeline.steps.finish import CompletionOutcome, finalize
from bucketscribe.pipeline.steps.intake import (
    UPLOAD_GONE,
    Rejection,
    UploadOutcome,
    UploadResult,
    already_there,
    job_result,
    reject,
    release,
    release_quietly,
    upload_unchanged,
)
from bucketscribe.pipeline.steps.job_writes import apply, describe_error
from bucketscribe.ports.media_tools import DecoderMissing, MediaError, SpeechPcm
from bucketscribe.ports.provider import (
    STREAM_CUT_AT_DEADLINE,
    ProviderError,
    StreamedRecording,
    StreamingProvider,
)

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
    jobs: list[Job],
    profile: Profile,
    provider: StreamingProvider,
    ports: PipelinePorts,
    *,
    out_of_time: Callable[[], bool],
    time_left: TimeLeft = lambda: None,
) -> list[StreamOutcome]:
    """Stream claimed, prepared ACCEPTED jobs of a real-time profile; one outcome per job, in order.
    A stream starts only if it can end within ``time_left``; the others are deferred."""
    if not jobs:
        return []
    run = _Run(profile, provider, ports, out_of_time, time_left)
    with ThreadPoolExecutor(
        max_workers=min(len(jobs), MAX_PARALLEL_STREAMS), thread_name_prefix="realtime"
    ) as pool:
        return list(pool.map(run.stream_job, jobs))


@dataclass(frozen=True)
class _Run:
    profile: Profile
    provider: StreamingProvider
    ports: PipelinePorts
    out_of_time: Callable[[], bool]
    time_left: TimeLeft

    def stream_job(self, job: Job) -> StreamOutcome:
        """One job's outcome; nothing raised (one upload's error never fails the others' delivery).
        An upload handed to file transcription by an earlier run never comes here: it is served by
        the batch profile (``Profile.serving``)."""
        try:
            try:
                return self._stream_job(job)
            except Rejection as rejection:
                return StreamOutcome(job=job, result=reject(job, rejection.error, self.ports))
        except Exception as exc:
            logger.exception("Streaming an upload failed unexpectedly", extra={"job_id": job.id})
            release_quietly(job, self.ports)
            return StreamOutcome(job=job, result=job_result(job, UploadOutcome.RETRY, describe_error(exc)))

    def _stream_job(self, job: Job) -> StreamOutcome:
        if self.out_of_time():
            return self._defer(job, "out of time in this run")
        interrupted = job.attempts_in(AttemptState.ABANDONED, AttemptState.EXPIRED) + sum(
            1 for a in job.attempts if a.error is not None and a.error.code == STREAM_CUT_AT_DEADLINE
        )
        if interrupted >= MAX_STREAM_RESTARTS:
            error = JobError(
                code=INTERRUPTED,
                message=f"{interrupted} streams of this upload were cut short (their workers stopped "
                "or ran out of time); not streamed again, to pay no more. Re-drive it with "
                f"`bucketscribe redrive {job.id}`",
                retryable=True,
            )
            return StreamOutcome(job=job, result=reject(job, error, self.ports))
        if (exhausted := provider_jobs_exhausted(job, self.ports.limits.max_provider_jobs)) is not None:
            return StreamOutcome(job=job, result=reject(job, exhausted, self.ports))
        known_ms = job.media.duration_ms if job.media is not None else None
        if known_ms is not None and (early := self._too_long_now(job, known_ms)) is not None:
            return early
        speech = _speech(job, self.provider, self.profile, self.ports)
        if (late := self._too_long_now(job, speech.duration_ms)) is not None:
            return late
        return _stream(job, speech, self.profile, self.provider, self.ports, self._allowed())

    def _allowed(self) -> timedelta:
        """How long a stream starting now may take: the mode's budget, or less if this run ends sooner."""
        left = self.time_left()
        budget = self.ports.limits.realtime_budget
        return budget if left is None else max(min(budget, left), timedelta(0))

    def _too_long_now(self, job: Job, audio_ms: int) -> StreamOutcome | None:
        """None when ``audio_ms`` of audio can be streamed now; otherwise what to do instead."""
        needed = stream_time(audio_ms)
        if needed > self.ports.limits.realtime_budget:
            return _too_long(job, self.provider, self.profile, self.ports)
        if needed > self._allowed():
            # Started now, the stream would outlive this run: the next run has the whole budget.
            return self._defer(job, "not enough time left in this run to stream it")
        return None

    def _defer(self, job: Job, reason: str) -> StreamOutcome:
        release(job, self.ports)
        return StreamOutcome(job=job, result=job_result(job, UploadOutcome.DEFERRED, reason))


def stream_time(audio_ms: int) -> timedelta:
    """How long streaming this much audio may take at worst: a service that keeps pace with real time."""
    return timedelta(milliseconds=audio_ms) + STREAM_OVERHEAD


def _speech(job: Job, provider: StreamingProvider, profile: Profile, ports: PipelinePorts) -> SpeechPcm:
    """The upload decoded to 16 kHz PCM (``Rejection`` when it cannot be)."""
    if not upload_unchanged(job, ports):
        raise Rejection(UPLOAD_GONE.code, UPLOAD_GONE.message)
    key = job.media_key or job.source.key
    try:
        if ports.media_tools is None:
            raise DecoderMissing("no media tools in this deployment")
        return ports.media_tools.speech(job.source, key, split_channels=provider.splits_channels(profile))
    except DecoderMissing as exc:
        raise Rejection(
            "UNSUPPORTED_MEDIA",
            "real-time mode streams 16 kHz 16-bit PCM, and this deployment has no decoder "
            f"(PyAV) to make it from {_described(job)}: upload a 16 kHz 16-bit WAV (mono, or "
            "stereo for a profile that splits the channels), or use a batch profile",
        ) from exc
    except MediaError as exc:
        raise Rejection("NO_AUDIO", f"no usable audio track: {exc}") from exc


def _described(job: Job) -> str:
    media = job.media
    if media is None:
        return "this upload"
    rate = f", {media.sample_rate} Hz" if media.sample_rate else ""
    channels = {None: "", 1: ", mono"}.get(media.channels, f", {media.channels} channels")
    return f"{media.codec or 'its audio'} in {media.container}{rate}{channels}"


def _too_long(job: Job, provider: StreamingProvider, profile: Profile, ports: PipelinePorts) -> StreamOutcome:
    longest = ports.limits.realtime_budget - STREAM_OVERHEAD
    handed_to = provider.longer_uploads_to(profile)
    if handed_to is not None:
        now = ports.clock()
        batch = profile.serving(handed_to)
        routed = apply(
            ports.jobs,
            job,
            partial(
                Job.route_to,
                now=now,
                provider=batch.provider,
                model=ports.provider(handed_to).model_name(batch),
                owner=job.claimed_by or "",
            ),
        )
        if routed is None:
            return StreamOutcome(job=job, result=_not_ours(job, ports))
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
    job: Job,
    speech: SpeechPcm,
    profile: Profile,
    provider: StreamingProvider,
    ports: PipelinePorts,
    allowed: timedelta,
) -> StreamOutcome:
    now = ports.clock()
    # Nobody takes the job over while the stream may still run (it is cut at ``allowed``) and its
    # outputs are written.
    lease = max(ports.limits.claim_lease, allowed + STREAM_OVERHEAD)
    begun = apply(
        ports.jobs,
        job,
        partial(Job.start_attempt, now=now, lease_until=now + lease, owner=job.claimed_by or ""),
    )
    if begun is None:
        return StreamOutcome(job=job, result=_not_ours(job, ports))
    try:
        recording = provider.stream(speech, profile, within=allowed)
    except ProviderError as exc:
        return StreamOutcome(job=begun, failed=exc)
    except Exception as exc:  # inside the SDK: the stream broke, nothing of it is kept
        logger.exception("The stream failed unexpectedly", extra={"job_id": job.id})
        return StreamOutcome(
            job=begun, failed=ProviderError("STREAM_FAILED", describe_error(exc), retryable=True)
        )
    try:
        return _write(begun, recording, ports)
    except Exception:
        # The stream's result is lost with this run; the reconciler streams again (bounded).
        logger.exception("Could not record a finished stream", extra={"job_id": job.id})
        return StreamOutcome(
            job=begun,
            result=job_result(job, UploadOutcome.DEFERRED, "the stream ended but was not recorded"),
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
            owner=begun.claimed_by,
        ),
    )
    if bound is None:
        return StreamOutcome(
            job=begun, result=job_result(job, UploadOutcome.DUPLICATE, "the job moved on meanwhile")
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


def _not_ours(job: Job, ports: PipelinePorts) -> UploadResult:
    """The job's first write found another worker's: a new upload's job another delivery created,
    or a stored job taken over."""
    if job.draft:
        return already_there(job, ports)
    return job_result(job, UploadOutcome.DUPLICATE, "taken over by another worker")
