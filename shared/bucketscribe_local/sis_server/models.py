"""State of the SIS-compatible server: jobs, the worker pool, callbacks, retention, faults.

Nothing here knows about HTTP requests coming in; ``responses.py`` turns the wire into calls on
``SisBackend`` and renders ``SisError`` as SIS's ``{"error_code", "error_msg"}`` bodies.
"""

from __future__ import annotations

import json
import logging
import time
import unicodedata
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from bucketscribe_local.emulator_kit.audio import audio_length_ms, wav_file
from bucketscribe_local.emulator_kit.backend import EmulatorBackend
from bucketscribe_local.emulator_kit.clock import Clock
from bucketscribe_local.emulator_kit.delivery import Deliverer, DeliveryEvent, DeliveryPolicy
from bucketscribe_local.emulator_kit.fetch import MediaTooLarge, MediaUnreachable, fetch_media
from bucketscribe_local.emulator_kit.jobs import AudioProgress, EmulatedJob, EmulatedJobState, iso_utc
from bucketscribe_local.emulator_kit.lost_answers import LostAnswer, roll_lost_answer
from bucketscribe_local.emulator_kit.retention import Retention
from bucketscribe_local.faults import FaultPlan
from bucketscribe_local.speech import (
    FixedSpeechEngine,
    Recognition,
    RecognizedSegment,
    SpeechEngine,
    UnreadableAudio,
    engine_name,
)

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_S = 72 * 3600
MAX_AUDIO_BYTES = 300 * 1024 * 1024
MAX_CALLBACK_URL_LENGTH = 2048

AUDIO_FORMATS = frozenset(
    {
        "auto",
        "pcm16k16bit",
        "pcm8k16bit",
        "ulaw16k8bit",
        "ulaw8k8bit",
        "alaw16k8bit",
        "alaw8k8bit",
        "vox8k4bit",
        "v3_8k4bit",
    }
)
# The models SIS documents for LASR (SDK 3.1.219 docstrings plus the newer travel model).
KNOWN_PROPERTIES = frozenset(
    {
        "chinese_8k_general",
        "chinese_16k_media",
        "chinese_8k_common",
        "chinese_16k_conversation",
        "chinese_8k_bank",
        "chinese_8k_insurance",
        "sichuan_8k_common",
        "chinese_16k_travel",
    }
)

# Raw (headerless) formats: WAV format tag, sample rate, bits per sample. We give the engine a
# WAV header so it can decode them; vox/v3 (Dialogic ADPCM) have no WAV tag the engine knows,
# so those bytes go through unchanged and usually end as SIS.0535.
_RAW_FORMATS: dict[str, tuple[int, int, int]] = {
    "pcm16k16bit": (1, 16000, 16),
    "pcm8k16bit": (1, 8000, 16),
    "alaw16k8bit": (6, 16000, 8),
    "alaw8k8bit": (6, 8000, 8),
    "ulaw16k8bit": (7, 16000, 8),
    "ulaw8k8bit": (7, 8000, 8),
}


class SisError(Exception):
    """A request SIS would refuse: rendered as ``{"error_code", "error_msg"}`` with ``http_status``."""

    def __init__(self, http_status: int, error_code: str, error_msg: str) -> None:
        super().__init__(f"{http_status} {error_code}: {error_msg}")
        self.http_status = http_status
        self.error_code = error_code
        self.error_msg = error_msg

    def body(self) -> dict[str, str]:
        return {"error_code": self.error_code, "error_msg": self.error_msg}


class JobStatus(StrEnum):
    WAITING = "WAITING"
    FINISHED = "FINISHED"
    ERROR = "ERROR"


Channel = Literal["MONO", "LEFT_AGENT", "RIGHT_AGENT"]
YesNo = Literal["yes", "no"]


class AnalysisRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    diarization: bool = True
    channel: Channel = "MONO"
    emotion: bool = True
    speed: bool = True


class TranscriberSettings(BaseModel):
    """``config`` of the submit body, with SIS's defaults filled in."""

    model_config = ConfigDict(frozen=True)

    audio_format: str
    property: str
    add_punc: YesNo = "no"
    digit_norm: YesNo = "yes"  # accepted, not acted on: the engine writes digits as it hears them
    need_word_info: YesNo = "no"
    vocabulary_id: str | None = None  # accepted, not acted on: no hot-word support offline
    callback_url: str | None = None
    need_analysis_info: AnalysisRequest | None = None


class TranscriberSubmission(BaseModel):
    model_config = ConfigDict(frozen=True)

    data_url: str
    config: TranscriberSettings


class SisCounters(BaseModel):
    """What the emulator has seen and done, for tests and benchmarks."""

    submissions_received: int = 0
    jobs_accepted: int = 0
    submissions_rejected: int = 0
    responses_lost: int = 0  # jobs created whose answer the lost_response fault threw away
    jobs_finished: int = 0
    jobs_failed: int = 0
    jobs_expired: int = 0
    callback_attempts: int = 0
    callbacks_sent: int = 0  # deliveries the receiver answered with 200 (a duplicate counts again)
    callbacks_dropped: int = 0  # skipped on purpose by the drop_callback_rate fault
    callbacks_failed: int = 0  # deliveries given up after every retry
    callbacks_forged: int = 0  # extra callbacks naming another job (callback_for_unknown_job)
    most_waiting: int = 0  # the most jobs waiting or running at once (the account's concurrency)


class JobStats(BaseModel):
    job_id: str
    status: JobStatus
    callback_url: str | None
    callback_attempts: int
    callbacks_sent: int
    callbacks_dropped: int
    callbacks_failed: int


@dataclass(frozen=True)
class Acceptance:
    """A created job, and whether (and how) its answer is to be lost on the way back."""

    job_id: str
    lost_answer: LostAnswer | None
    created_at: float


class _JobFailure(Exception):
    def __init__(self, error_code: str, error_msg: str) -> None:
        super().__init__(f"{error_code}: {error_msg}")
        self.error_code = error_code
        self.error_msg = error_msg


@dataclass
class _Job:
    job_id: str
    submission: TranscriberSubmission
    created_at: float  # clock time, like every time of a job
    status: JobStatus = JobStatus.WAITING
    started_at: float | None = None
    finished_at: float | None = None
    expired: bool = False
    lost_response: bool = False
    audio_duration_ms: int | None = None
    progress: AudioProgress = field(default_factory=AudioProgress)
    segments: list[dict[str, Any]] = field(default_factory=list)
    error_code: str | None = None
    error_msg: str | None = None
    engine: str | None = None  # the engine that produced the segments
    language: str | dict[str, str] | None = None  # what it ran with: one, or one per channel
    callback_attempts: int = 0
    callbacks_sent: int = 0
    callbacks_dropped: int = 0
    callbacks_failed: int = 0

    @property
    def listing_state(self) -> EmulatedJobState:
        if self.expired:
            return EmulatedJobState.EXPIRED
        if self.status is JobStatus.FINISHED:
            return EmulatedJobState.FINISHED
        if self.status is JobStatus.ERROR:
            return EmulatedJobState.FAILED
        return EmulatedJobState.RUNNING if self.started_at is not None else EmulatedJobState.QUEUED


def parse_submission(
    payload: object, *, properties: frozenset[str] = KNOWN_PROPERTIES
) -> TranscriberSubmission:
    """Check a submit body the way SIS does: SIS.0012 for a missing field, SIS.0032 for a bad value."""
    if not isinstance(payload, dict):
        raise SisError(400, "SIS.0032", "request body is invalid json")
    if "data_url" not in payload:
        raise SisError(400, "SIS.0012", "'data_url' is missing")
    data_url = payload["data_url"]
    if not isinstance(data_url, str) or not data_url.strip():
        raise SisError(400, "SIS.0032", "data url is empty")
    if not data_url.startswith(("http://", "https://")):
        raise SisError(400, "SIS.0032", "'data_url' is invalid")
    config = payload.get("config")
    if config is None:
        raise SisError(400, "SIS.0012", "'config' is missing")
    if not isinstance(config, dict):
        raise SisError(400, "SIS.0032", "'config' is invalid")
    for required in ("audio_format", "property"):
        if config.get(required) is None:
            raise SisError(400, "SIS.0012", f"'{required}' is missing")
    if config["audio_format"] not in AUDIO_FORMATS:
        raise SisError(400, "SIS.0032", "'audio_format' is invalid")
    if config["property"] not in properties:
        raise SisError(400, "SIS.0032", "'property' is invalid")
    for flag in ("add_punc", "digit_norm", "need_word_info"):
        if flag in config and config[flag] not in ("yes", "no"):
            raise SisError(400, "SIS.0032", f"'{flag}' is invalid")
    callback_url = config.get("callback_url")
    # SIS also refuses IP-address hosts here; we cannot, since everything local lives on 127.0.0.1.
    if callback_url is not None and (
        not isinstance(callback_url, str)
        or len(callback_url) >= MAX_CALLBACK_URL_LENGTH
        or not callback_url.startswith(("http://", "https://"))
    ):
        raise SisError(400, "SIS.0032", "'callback_url' is invalid or too long")
    vocabulary_id = config.get("vocabulary_id")
    if vocabulary_id is not None and not isinstance(vocabulary_id, str):
        raise SisError(400, "SIS.0032", "'vocabulary_id' is invalid")
    analysis = config.get("need_analysis_info")
    if analysis is not None:
        if not isinstance(analysis, dict):
            raise SisError(400, "SIS.0032", "'need_analysis_info' is invalid")
        for flag in ("diarization", "emotion", "speed"):
            if flag in analysis and not isinstance(analysis[flag], bool):
                raise SisError(400, "SIS.0032", f"'{flag}' is invalid")
        if "channel" in analysis and analysis["channel"] not in ("MONO", "LEFT_AGENT", "RIGHT_AGENT"):
            raise SisError(400, "SIS.0032", "'channel' is invalid")
    known = set(TranscriberSettings.model_fields)
    settings = TranscriberSettings.model_validate(
        {k: v for k, v in config.items() if k in known and v is not None}
    )
    return TranscriberSubmission(data_url=data_url, config=settings)


def rfc3339(epoch_s: float) -> str:
    """``2018-12-04T13:10:29.310Z``, the form SIS documents."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char).startswith("P")


def strip_punctuation(text: str) -> str:
    """Remove punctuation (add_punc=no), keeping apostrophes and hyphens inside words (don't, e-mail)."""
    kept: list[str] = []
    for i, char in enumerate(text):
        if _is_punctuation(char):
            inside_word = (
                char in "'’-" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
            )
            if not inside_word:
                kept.append(" ")
                continue
        kept.append(char)
    return " ".join("".join(kept).split())


def _spoken_units(text: str) -> int:
    """Words for speech-rate purposes: each CJK character counts, as SIS's "字/秒" does."""
    units = 0
    for token in text.split():
        cjk = sum(1 for c in token if unicodedata.east_asian_width(c) in ("W", "F") and c.isalpha())
        rest = "".join(
            c for c in token if not (unicodedata.east_asian_width(c) in ("W", "F") and c.isalpha())
        )
        units += cjk + (1 if any(c.isalnum() for c in rest) else 0)
    return units


def _wrap_raw_audio(raw: bytes, audio_format: str) -> bytes:
    spec = _RAW_FORMATS.get(audio_format)
    if spec is None:
        return raw
    format_tag, rate, bits = spec
    return wav_file(raw, sample_rate=rate, bits=bits, format_tag=format_tag)


class SisBackend(EmulatorBackend[SisCounters]):
    """The jobs of one emulated SIS project, and the workers that run them.

    ``workers`` bounds how many recognitions run at once; ``max_concurrent_jobs`` bounds how many
    may be WAITING (queued or running) before a submission gets SIS.0312. Finished jobs are kept
    ``retention_s`` seconds (or the fault plan's ``result_expiry_s``) after completion, then answer
    "task id is not found". Every delay, expiry and timestamp is on ``clock``.
    """

    def __init__(
        self,
        *,
        ak: str,
        sk: str,
        project_id: str,
        engine: SpeechEngine,
        faults: FaultPlan | None = None,
        workers: int = 2,
        max_concurrent_jobs: int = 100,
        retention_s: float = DEFAULT_RETENTION_S,
        language: str | None = None,
        properties: frozenset[str] = KNOWN_PROPERTIES,
        callback_attempts: int = 4,
        callback_backoff_s: float = 0.5,
        callback_timeout_s: float = 10.0,
        fetch_timeout_s: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        if workers < 1 or max_concurrent_jobs < 1 or callback_attempts < 1:
            raise ValueError("workers, max_concurrent_jobs and callback_attempts must be at least 1")
        self.project_id = project_id
        self.engine = engine
        self.workers = workers
        self.max_concurrent_jobs = max_concurrent_jobs
        self.retention_s = retention_s
        # SIS properties only name Chinese models, while local test audio is often English, so
        # by default the engine detects the language itself; set this to force one.
        self.language = language
        self.properties = properties
        self.fetch_timeout_s = fetch_timeout_s
        super().__init__(counters=SisCounters(), faults=faults, clock=clock)
        self._credentials: dict[str, str] = {ak: sk}
        self._running = 0  # accepted jobs not yet finished
        self._jobs: dict[str, _Job] = {}
        self._instant_engine = FixedSpeechEngine()
        self._job_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sis-job")
        # Callbacks get their own threads so a slow or delayed receiver never holds a worker.
        self._callbacks = Deliverer(
            self._clock,
            DeliveryPolicy(
                attempts=callback_attempts,
                backoff_s=callback_backoff_s,
                timeout_s=callback_timeout_s,
                accepted=lambda status: status == 200,  # SIS documents "must answer 200"
            ),
            workers=max(4, workers),
            name="sis-callback",
        )

    # ----- credentials ------------------------------------------------------------------------

    def secret_for(self, ak: str) -> str | None:
        return self._credentials.get(ak)

    def add_credentials(self, ak: str, sk: str) -> None:
        self._credentials[ak] = sk

    # ----- the two API calls ------------------------------------------------------------------

    def submit(self, payload: object) -> Acceptance:
        """Accept a job (``{"job_id"}`` on the wire) or raise the ``SisError`` SIS would answer."""
        self.count("submissions_received")
        try:
            plan = self.faults
            if self.roll(plan.submit_error_rate):
                raise _injected_submit_error(plan.submit_error_status)
            submission = parse_submission(payload, properties=self.properties)
            with self._lock:
                self._expire_finished()
                waiting = sum(1 for job in self._jobs.values() if job.status is JobStatus.WAITING)
                if waiting >= self.max_concurrent_jobs:
                    raise SisError(429, "SIS.0312", "the number of concurrent jobs exceeds the limit")
                lost_answer = roll_lost_answer(self._dice)
                job = _Job(
                    job_id=str(uuid.uuid4()),
                    submission=submission,
                    created_at=self._clock.now(),
                    lost_response=lost_answer is not None,
                )
                self._jobs[job.job_id] = job
                self._counters.most_waiting = max(self._counters.most_waiting, waiting + 1)
                self._counters.jobs_accepted += 1
                self._counters.responses_lost += lost_answer is not None
                self._running += 1
                self._changed.notify_all()
        except SisError:
            self.count("submissions_rejected")
            raise
        # Queued jobs wait on the clock, not on a worker: a delayed job never holds one.
        self._timers.call_at(job.created_at + plan.processing_delay_s, lambda: self._start(job.job_id))
        return Acceptance(job_id=job.job_id, lost_answer=lost_answer, created_at=job.created_at)

    def describe(self, job_id: str) -> dict[str, Any]:
        """The GET ``…/jobs/{job_id}`` body (no ``job_id`` in it, as SIS does)."""
        with self._lock:
            self._expire_finished()
            job = self._jobs.get(job_id)
            if job is None or job.expired:
                raise SisError(400, "SIS.0032", "task id is not found")
            return self._render(job)

    # ----- observation ------------------------------------------------------------------------

    def counters(self) -> SisCounters:
        with self._lock:
            return self._counters.model_copy()

    def emulated_jobs(self) -> list[EmulatedJob]:
        """One row per job (SIS jobs have one file each), oldest first."""
        with self._lock:
            self._expire_finished()
            return [
                EmulatedJob(
                    task_id=job.job_id,
                    file_url=job.submission.data_url,
                    state=job.listing_state,
                    created_at=iso_utc(job.created_at),
                    finished_at=iso_utc(job.finished_at) if job.finished_at is not None else None,
                    audio_ms_total=job.progress.total_ms,
                    audio_ms_done=job.progress.done_ms,
                    lost_response=job.lost_response,
                )
                for job in sorted(self._jobs.values(), key=lambda j: j.created_at)
            ]

    def job_stats(self, job_id: str) -> JobStats:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise KeyError(job_id)
            return JobStats(
                job_id=job.job_id,
                status=job.status,
                callback_url=job.submission.config.callback_url,
                callback_attempts=job.callback_attempts,
                callbacks_sent=job.callbacks_sent,
                callbacks_dropped=job.callbacks_dropped,
                callbacks_failed=job.callbacks_failed,
            )

    def job_ids(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    def wait_for_job(self, job_id: str, timeout: float) -> JobStats:
        """Block until the job is FINISHED or ERROR (raises TimeoutError with its status if not)."""
        with self._changed:
            done = self._changed.wait_for(
                lambda: self._jobs[job_id].status is not JobStatus.WAITING, timeout=timeout
            )
        if not done:
            raise TimeoutError(f"SIS job {job_id} still WAITING after {timeout} s")
        return self.job_stats(job_id)

    def wait_idle(self, timeout: float) -> bool:
        """Block until every accepted job has finished and every callback delivery has ended."""
        deadline = time.monotonic() + timeout
        with self._changed:
            if not self._changed.wait_for(lambda: self._running == 0, timeout=timeout):
                return False
        return self._callbacks.wait_idle(max(deadline - time.monotonic(), 0.0))

    def close(self) -> None:
        super().close()
        self._job_pool.shutdown(wait=False, cancel_futures=True)
        self._callbacks.close()

    # ----- internals --------------------------------------------------------------------------

    def _expire_finished(self) -> None:
        """Mark jobs past their retention expired (kept for the listing, result dropped); lock held."""
        self._counters.jobs_expired += Retention(self.retention_s).sweep(
            self._jobs.values(),
            now=self._clock.now(),
            plan=self.faults,
            finished_at=lambda job: job.finished_at,
            drop_result=_drop_segments,
        )

    def _start(self, job_id: str) -> None:
        if self._stopping.is_set():
            return
        try:
            self._job_pool.submit(self._run_job, job_id)
        except RuntimeError:  # pool shut down: the emulator is stopping
            return

    def _run_job(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs[job_id]
            job.started_at = self._clock.now()
            self._changed.notify_all()
        submission = job.submission
        try:
            audio = self._fetch_audio(submission.data_url)
            if self.roll(self.faults.job_failure_rate):
                raise _JobFailure("SIS.0100", "internal error (injected by the emulator's fault plan)")
            job.engine = engine_name(self.engine_for_run())
            recognition_segments, heard_ms, job.language = self._recognize(
                audio, submission.config, job.progress
            )
            # SIS's audio_duration is the recording's length, whatever the engine made of it.
            duration_ms = audio_length_ms(_wrap_raw_audio(audio, submission.config.audio_format)) or heard_ms
        except _JobFailure as failure:
            self._finish(job, error=(failure.error_code, failure.error_msg))
        except UnreadableAudio:
            self._finish(job, error=("SIS.0535", "Audio format is invalid!"))
        except Exception:
            logger.exception("SIS emulator job %s crashed", job_id)
            self._finish(job, error=("SIS.0100", "internal error"))
        else:
            self._finish(job, segments=recognition_segments, duration_ms=duration_ms)

    def _fetch_audio(self, data_url: str) -> bytes:
        # SIS downloads data_url itself; so do we, to prove the URL really is reachable.
        try:
            return fetch_media(
                data_url,
                max_bytes=MAX_AUDIO_BYTES,
                timeout_s=self.fetch_timeout_s,
                user_agent="sis-emulator/1",
            )
        except MediaUnreachable as exc:
            raise _JobFailure("SIS.0001", f"failed to download the audio from data_url: {exc}") from exc
        except MediaTooLarge as exc:
            raise _JobFailure("SIS.0032", "the audio file is larger than 300 MB") from exc

    def engine_for_run(self) -> SpeechEngine:
        return self._instant_engine if self.faults.instant else self.engine

    def _recognize(
        self, audio: bytes, config: TranscriberSettings, progress: AudioProgress
    ) -> tuple[list[dict[str, Any]], int, str | dict[str, str] | None]:
        """The rendered segments, the duration, and the language the engine ran with (one per
        channel where a split recording's channels were heard in different ones)."""
        engine = self.engine_for_run()
        audio = _wrap_raw_audio(audio, config.audio_format)
        word_timestamps = config.need_word_info == "yes"
        analysis = config.need_analysis_info
        if analysis is None or analysis.channel == "MONO":
            recognition = engine.recognize(
                audio,
                language=self.language,
                channel=None,
                word_timestamps=word_timestamps,
                on_progress=progress.reporter(),
            )
            progress.complete(recognition.duration_ms)
            # We have no diarizer: every sentence of a mono file is attributed to speaker1.
            tagged = [(segment, "speaker1") for segment in recognition.segments]
            rendered = self._render_segments(tagged, config, recognition.duration_ms)
            return rendered, recognition.duration_ms, recognition.language
        agent_channel = 0 if analysis.channel == "LEFT_AGENT" else 1
        by_channel: dict[int, Recognition] = {
            channel: engine.recognize(
                audio,
                language=self.language,
                channel=channel,
                word_timestamps=word_timestamps,
                on_progress=progress.reporter(channel, 2),
            )
            for channel in (0, 1)
        }
        tagged = [
            (segment, "AGENT" if channel == agent_channel else "USER")
            for channel, recognition in by_channel.items()
            for segment in recognition.segments
        ]
        tagged.sort(key=lambda item: (item[0].start_ms, item[0].end_ms))
        duration_ms = max(recognition.duration_ms for recognition in by_channel.values())
        progress.complete(duration_ms)
        languages = {str(channel): r.language for channel, r in by_channel.items() if r.language}
        language: str | dict[str, str] | None = languages or None
        if len(set(languages.values())) == 1:
            language = next(iter(languages.values()))
        return self._render_segments(tagged, config, duration_ms), duration_ms, language

    @staticmethod
    def _render_segments(
        tagged: list[tuple[RecognizedSegment, str]], config: TranscriberSettings, duration_ms: int
    ) -> list[dict[str, Any]]:
        punctuated = config.add_punc == "yes"
        analysis = config.need_analysis_info
        rendered: list[dict[str, Any]] = []
        for segment, role in tagged:
            text = segment.text.strip() if punctuated else strip_punctuation(segment.text)
            result: dict[str, Any] = {"text": text}
            if analysis is not None:
                info: dict[str, Any] = {}
                if analysis.diarization:
                    info["role"] = role
                if analysis.emotion:
                    info["emotion"] = "UNKNOWN"  # no emotion model offline; UNKNOWN is a documented value
                if analysis.speed:
                    seconds = max(segment.end_ms - segment.start_ms, 1) / 1000
                    info["speed"] = round(_spoken_units(text) / seconds, 1)
                result["analysis_info"] = info
            if config.need_word_info == "yes":
                words = []
                for word in segment.words:
                    spelled = word.text.strip() if punctuated else strip_punctuation(word.text)
                    if spelled:
                        words.append({"start_time": word.start_ms, "end_time": word.end_ms, "word": spelled})
                result["word_info"] = words
            rendered.append({"start_time": segment.start_ms, "end_time": segment.end_ms, "result": result})
        return rendered

    def _finish(
        self,
        job: _Job,
        *,
        segments: list[dict[str, Any]] | None = None,
        duration_ms: int | None = None,
        error: tuple[str, str] | None = None,
    ) -> None:
        with self._lock:
            job.finished_at = self._clock.now()
            if error is not None:
                job.status = JobStatus.ERROR
                job.error_code, job.error_msg = error
                self._counters.jobs_failed += 1
            else:
                job.status = JobStatus.FINISHED
                job.segments = segments or []
                job.audio_duration_ms = duration_ms
                self._counters.jobs_finished += 1
            if job.submission.config.callback_url:
                self._schedule_callbacks(job)
            self._running -= 1
            self._changed.notify_all()

    def _render(self, job: _Job) -> dict[str, Any]:
        body: dict[str, Any] = {"status": job.status.value, "create_time": rfc3339(job.created_at)}
        if job.status is JobStatus.WAITING:
            return body
        assert job.started_at is not None and job.finished_at is not None
        body["start_time"] = rfc3339(job.started_at)
        body["finish_time"] = rfc3339(job.finished_at)
        if job.status is JobStatus.ERROR:
            # CollectTranscriberJobResponse has no error fields and the docs show none for a failed
            # job; we add error_code/error_msg (the SDK model ignores unknown keys, raw_content keeps
            # them) so a caller can log why, and leave segments/audio_duration out.
            body["error_code"] = job.error_code
            body["error_msg"] = job.error_msg
            return body
        body["audio_duration"] = job.audio_duration_ms
        body["segments"] = job.segments
        # Not in SIS's API (clients ignore them): which engine really produced this transcript, and
        # the language it heard (SIS's property names one; the offline engine may detect it).
        body["engine"] = job.engine
        body["language"] = job.language
        return body

    def _schedule_callbacks(self, job: _Job) -> None:
        """Hand a finished job's callback over under the delivery faults; lock held."""
        callback_url = job.submission.config.callback_url
        assert callback_url is not None and job.finished_at is not None

        def count(event: DeliveryEvent) -> None:
            with self._lock:
                if event is DeliveryEvent.ATTEMPT:
                    job.callback_attempts += 1
                    self._counters.callback_attempts += 1
                elif event is DeliveryEvent.SENT:
                    job.callbacks_sent += 1
                    self._counters.callbacks_sent += 1
                else:
                    job.callbacks_failed += 1
                    self._counters.callbacks_failed += 1
                self._changed.notify_all()

        faults = self._callbacks.notify(
            callback_url,
            dice=self._dice,
            finished_at=job.finished_at,
            body=_json_body({"job_id": job.job_id, **self._render(job)}),
            forged_body=lambda: _json_body(self._forged_callback(job)),
            headers=lambda: {"Content-Type": "application/json"},
            on_event=count,
        )
        job.callbacks_dropped += faults.dropped
        self._counters.callbacks_dropped += faults.dropped
        self._counters.callbacks_forged += faults.forged

    def _forged_callback(self, job: _Job) -> dict[str, Any]:
        """Another job's status under its own job_id, as if SIS mixed callbacks up; lock held."""
        others = [j for j in self._jobs.values() if j is not job and not j.expired]
        finished = [j for j in others if j.status is not JobStatus.WAITING]
        if finished or others:
            other = self._dice.choose(finished or others)
            return {"job_id": other.job_id, **self._render(other)}
        # No other job exists: an id SIS never handed out, carrying this job's result.
        return {**self._render(job), "job_id": str(uuid.uuid4())}


def _json_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def _drop_segments(job: _Job) -> None:
    job.segments = []  # rebound, not cleared: a body rendered a moment ago may still hold the list


def _injected_submit_error(status: int) -> SisError:
    if status == 429:
        return SisError(429, "SIS.0312", "the number of concurrent jobs exceeds the limit (injected)")
    if status >= 500:
        return SisError(status, "SIS.0100", "internal error (injected)")
    return SisError(status, "SIS.0003", "request refused (injected)")
