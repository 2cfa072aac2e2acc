"""State of the DashScope-compatible emulator, kept apart from the wire (moto style).

``DashScopeBackend`` owns file-transcription tasks (one subtask per file URL), the
worker pool that downloads and recognises them, result documents, expiry, the
per-key query limiter, the EventBridge-style push and the fault knobs.
``RealtimeStream`` is the state of one WebSocket task (gummy or realtime
Paraformer): audio received so far, which sentences are already final, and the
engine passes that turn audio into sentences. ``responses.py`` turns all of this
into DashScope's JSON.
"""

from __future__ import annotations

import io
import json
import logging
import math
import struct
import threading
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
import uuid
import wave
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bucketscribe.local.emulator_kit.clock import Clock, RealClock, Timers
from bucketscribe.local.emulator_kit.delivery import Deliverer, DeliveryEvent, DeliveryFaults, DeliveryPolicy
from bucketscribe.local.emulator_kit.jobs import AudioProgress, EmulatedJob, EmulatedJobState, iso_utc
from bucketscribe.local.emulator_kit.lost_answers import LostAnswer, roll_lost_answer
from bucketscribe.local.emulator_kit.retention import Retention
from bucketscribe.local.faults import FaultDice, FaultPlan
from bucketscribe.local.speech import (
    FixedSpeechEngine,
    Recognition,
    RecognizedSegment,
    RecognizedWord,
    SpeechEngine,
    UnreadableAudio,
)

logger = logging.getLogger(__name__)

FILE_TRANSCRIPTION_MODELS = frozenset(
    {"paraformer-v2", "paraformer-8k-v2", "paraformer-v1", "paraformer-8k-v1", "paraformer-mtl-v1"}
)
GUMMY_MODELS = frozenset({"gummy-realtime-v1", "gummy-chat-v1"})
PARAFORMER_REALTIME_MODELS = frozenset(
    {
        "paraformer-realtime-v2",
        "paraformer-realtime-v1",
        "paraformer-realtime-8k-v2",
        "paraformer-realtime-8k-v1",
    }
)
REALTIME_FORMATS = frozenset({"pcm", "wav", "mp3", "opus", "speex", "aac", "amr"})
# The engine can only translate into English (faster-whisper's "translate" task).
SUPPORTED_TRANSLATION_TARGETS = frozenset({"en"})

DEFAULT_RETENTION_S = 24 * 3600.0
BEIJING = timezone(timedelta(hours=8))
LIST_TIME_FORMAT = "%Y%m%d%H%M%S"  # BaseAsyncApi.list: start_time/end_time "20230420000000"
MAX_LIST_PAGE_SIZE = 100
JSON_UTF8 = "application/json;charset=utf-8"

_THROTTLING_MESSAGE = "Requests rate limit exceeded, please try again later."
_INTERNAL_ERROR_MESSAGE = "An internal error has occured, please try again later or contact service support."


class DashScopeError(Exception):
    """An error DashScope reports as ``{"request_id","code","message"}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def throttled(cls) -> DashScopeError:
        return cls(429, "Throttling.RateQuota", _THROTTLING_MESSAGE)

    @classmethod
    def for_status(cls, status: int) -> DashScopeError:
        """The body DashScope answers with for an injected failure of this status."""
        if status == 429:
            return cls.throttled()
        if status >= 500:
            return cls(status, "InternalError", _INTERNAL_ERROR_MESSAGE)
        if status == 401:
            return cls(401, "InvalidApiKey", "Invalid API-key provided.")
        if status == 403:
            return cls(403, "AccessDenied", "Access denied.")
        return cls(status, "InvalidParameter", "Injected failure.")


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"

    @property
    def is_final(self) -> bool:
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED)


# ---------------------------------------------------------------------------------------------
# Request bodies
# ---------------------------------------------------------------------------------------------


class SubmitInput(BaseModel):
    model_config = ConfigDict(extra="allow")

    file_urls: list[str] = Field(min_length=1)

    @field_validator("file_urls")
    @classmethod
    def _urls_are_strings(cls, urls: list[str]) -> list[str]:
        if any(not url.strip() for url in urls):
            raise ValueError("file_urls must not contain empty strings")
        return urls


class TranscriptionParameters(BaseModel):
    """The parameters we act on; the SDK forwards any other kwarg unchecked, so extras pass."""

    model_config = ConfigDict(extra="allow")

    channel_id: list[int] = Field(default_factory=lambda: [0])
    language_hints: list[str] | None = None
    diarization_enabled: bool = False
    speaker_count: int | None = Field(default=None, ge=2, le=100)


class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: SubmitInput
    parameters: TranscriptionParameters = Field(default_factory=TranscriptionParameters)
    resources: list[dict[str, Any]] | None = None


def describe_validation_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


# ---------------------------------------------------------------------------------------------
# Audio helpers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WavLayout:
    sample_rate: int
    channels: int
    sample_width: int
    audio_format: int
    data_offset: int
    data_size: int | None


def parse_wav_header(data: bytes) -> WavLayout | None:
    """Find the ``fmt `` and ``data`` chunks of a RIFF/WAVE header (None if not there yet)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset = 12
    fmt: tuple[int, int, int, int] | None = None
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (chunk_size,) = struct.unpack("<I", data[offset + 4 : offset + 8])
        body = offset + 8
        if chunk_id == b"fmt ":
            if body + 16 > len(data):
                return None
            audio_format, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[body : body + 16])
            fmt = (audio_format, channels, rate, bits // 8)
        elif chunk_id == b"data":
            if fmt is None:
                return None
            # Streamed WAV headers often carry 0 or 0xFFFFFFFF as the data size.
            size = chunk_size if 0 < chunk_size < 0xFFFFFFFF else None
            return WavLayout(
                sample_rate=fmt[2],
                channels=fmt[1],
                sample_width=fmt[3],
                audio_format=fmt[0],
                data_offset=body,
                data_size=size,
            )
        offset = body + chunk_size + (chunk_size & 1)
    return None


def pcm_to_wav(pcm: bytes, sample_rate: int, channels: int = 1) -> bytes:
    """Wrap raw little-endian 16-bit PCM in a WAV header, so any engine can decode it."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm)
    return buffer.getvalue()


@dataclass(frozen=True)
class AudioProperties:
    audio_format: str
    channels: int
    sample_rate: int | None
    duration_ms: int | None


def probe_audio(data: bytes) -> AudioProperties:
    """What the result file's ``properties`` says; exact for WAV, a sniffed guess otherwise."""
    layout = parse_wav_header(data)
    if layout is not None:
        frame_bytes = max(layout.channels * layout.sample_width, 1)
        size = layout.data_size if layout.data_size is not None else len(data) - layout.data_offset
        size = min(size, len(data) - layout.data_offset)
        duration = int(size / frame_bytes * 1000 / layout.sample_rate) if layout.sample_rate else None
        codec = f"pcm_s{layout.sample_width * 8}le" if layout.audio_format == 1 else "wav"
        return AudioProperties(codec, layout.channels, layout.sample_rate, duration)
    if data[:4] == b"OggS":
        codec = "opus" if b"OpusHead" in data[:128] else "vorbis"
    elif data[:4] == b"fLaC":
        codec = "flac"
    elif data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        codec = "mp3"
    elif data[4:8] == b"ftyp":
        codec = "aac"
    elif data[:4] == b"\x1aE\xdf\xa3":
        codec = "webm"
    else:
        codec = "unknown"
    return AudioProperties(codec, 1, None, None)


def split_punctuation(token: str) -> tuple[str, str]:
    """``" Hello,"`` → ``("Hello", ",")``: DashScope words carry trailing punctuation apart."""
    text = token.strip()
    cut = len(text)
    while cut > 0 and unicodedata.category(text[cut - 1]).startswith("P"):
        cut -= 1
    if cut == 0:
        return text, ""
    return text[:cut], text[cut:]


def beijing_time(epoch_s: float, *, millis: bool = True) -> str:
    moment = datetime.fromtimestamp(epoch_s, BEIJING)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}" if millis else text


def _epoch_ms(epoch_s: float | None) -> int | None:
    return None if epoch_s is None else int(epoch_s * 1000)


# ---------------------------------------------------------------------------------------------
# File transcription state
# ---------------------------------------------------------------------------------------------


@dataclass
class Subtask:
    file_url: str
    status: TaskStatus = TaskStatus.PENDING
    code: str | None = None
    message: str | None = None
    result: dict[str, Any] | None = None
    audio_duration_ms: int = 0
    finished_at: float | None = None
    progress: AudioProgress = field(default_factory=AudioProgress)


@dataclass
class TaskCounters:
    query_calls: int = 0
    push_attempts: int = 0
    pushes_sent: int = 0


@dataclass
class TranscriptionTask:
    task_id: str
    request_id: str
    model: str
    api_key: str
    parameters: TranscriptionParameters
    subtasks: list[Subtask]
    submit_time: float  # every time of a task is on the backend's clock
    status: TaskStatus = TaskStatus.PENDING
    scheduled_time: float | None = None
    end_time: float | None = None
    expired: bool = False
    lost_answer: LostAnswer | None = None
    code: str | None = None
    message: str | None = None
    counters: TaskCounters = field(default_factory=TaskCounters)

    def metrics(self) -> dict[str, int]:
        succeeded = sum(1 for s in self.subtasks if s.status is TaskStatus.SUCCEEDED)
        failed = sum(1 for s in self.subtasks if s.status is TaskStatus.FAILED)
        return {"TOTAL": len(self.subtasks), "SUCCEEDED": succeeded, "FAILED": failed}

    def listing_state(self, subtask: Subtask) -> EmulatedJobState:
        if self.expired:
            return EmulatedJobState.EXPIRED
        return {
            TaskStatus.PENDING: EmulatedJobState.QUEUED,
            TaskStatus.RUNNING: EmulatedJobState.RUNNING,
            TaskStatus.SUCCEEDED: EmulatedJobState.FINISHED,
        }.get(subtask.status, EmulatedJobState.FAILED)


@dataclass
class BackendCounters:
    """Totals since start; ``DashScopeBackend.counters`` hands out a copy."""

    submit_calls: int = 0
    submit_rejected: int = 0
    tasks_created: int = 0
    responses_lost: int = 0  # tasks created whose answer the lost_response fault threw away
    tasks_finished: int = 0
    tasks_expired: int = 0
    query_calls: int = 0
    query_throttled: int = 0
    list_calls: int = 0
    cancel_calls: int = 0
    result_downloads: int = 0
    push_attempts: int = 0
    pushes_sent: int = 0
    pushes_dropped: int = 0
    pushes_duplicated: int = 0
    pushes_failed: int = 0
    pushes_forged: int = 0  # extra pushes naming another key's task or one never submitted
    ws_connections: int = 0
    ws_audio_frames: int = 0
    ws_tasks_started: int = 0
    ws_tasks_finished: int = 0
    ws_tasks_failed: int = 0


class SlidingWindowLimiter:
    """At most ``limit`` accepted calls per key in any ``window_s`` (rejected calls do not count)."""

    def __init__(self, limit: int | None, clock: Clock, window_s: float = 1.0):
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        if self.limit is None or self.limit <= 0:
            return True
        now = self._clock.now()
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and now - calls[0] >= self.window_s:
                calls.popleft()
            if len(calls) >= self.limit:
                return False
            calls.append(now)
            return True


@dataclass(frozen=True)
class PushSettings:
    target_url: str | None
    headers: Mapping[str, str]
    region: str
    account_id: str


class TaskListQuery(BaseModel):
    """``GET /api/v1/tasks`` parameters (``BaseAsyncApi.list`` sends them as the query string)."""

    model_config = ConfigDict(extra="ignore")

    page_no: int = Field(default=1, ge=1)
    page_size: int = Field(default=10, ge=1, le=MAX_LIST_PAGE_SIZE)
    status: TaskStatus | None = None
    model_name: str | None = None
    api_key_id: str | None = None
    region: str | None = None
    # Beijing time, as the SDK documents: "20230420000000".
    start_time: str | None = Field(default=None, pattern=r"^\d{14}$")
    end_time: str | None = Field(default=None, pattern=r"^\d{14}$")

    def window(self) -> tuple[float | None, float | None]:
        return _list_time(self.start_time), _list_time(self.end_time)


def _list_time(text: str | None) -> float | None:
    if text is None:
        return None
    return datetime.strptime(text, LIST_TIME_FORMAT).replace(tzinfo=BEIJING).timestamp()


class DashScopeBackend:
    """All emulator state; thread-safe, shared by the HTTP handlers and the worker pool.

    Each API key is its own account unless ``key_accounts`` puts several keys into one: tasks are
    visible (query, list, cancel) to every key of the account that submitted them, as the service
    documents ("all tasks under the Alibaba Cloud account that owns the current API key").
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = ("sk-local",),
        engine: SpeechEngine | None = None,
        faults: FaultPlan | None = None,
        workers: int = 4,
        max_files_per_task: int = 100,
        retention_s: float = DEFAULT_RETENTION_S,
        query_rps: int | None = 20,
        push_target_url: str | None = None,
        push_headers: Mapping[str, str] | None = None,
        push_retries: int = 3,
        push_retry_backoff_s: float = 0.2,
        idle_timeout_s: float = 23.0,
        connection_idle_s: float = 60.0,
        interim_interval_s: float = 1.0,
        download_timeout_s: float = 30.0,
        max_file_bytes: int = 2 * 1024**3,
        region: str = "cn-beijing",
        account_id: str = "1234567890123456",
        key_accounts: Mapping[str, str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        keys = list(api_keys)
        if not keys:
            raise ValueError("api_keys must name at least one key")
        # EventBridge events carry a numeric api_key_id, never the key itself.
        self._key_ids = {key: str(1000 + index) for index, key in enumerate(keys)}
        self._accounts = {key: (key_accounts or {}).get(key, f"account-of-{key}") for key in keys}
        self.engine: SpeechEngine = engine if engine is not None else FixedSpeechEngine()
        self._instant_engine = FixedSpeechEngine()
        self.max_files_per_task = max_files_per_task
        self.retention_s = retention_s
        self.idle_timeout_s = idle_timeout_s
        self.connection_idle_s = connection_idle_s
        self.interim_interval_s = interim_interval_s
        self.download_timeout_s = download_timeout_s
        self.max_file_bytes = max_file_bytes
        self.public_base_url: str | None = None
        self._clock = clock or RealClock()
        self._push = PushSettings(
            target_url=push_target_url,
            headers=dict(push_headers or {}),
            region=region,
            account_id=account_id,
        )
        self._pushes = Deliverer(
            self._clock,
            DeliveryPolicy(
                attempts=max(push_retries, 1),
                backoff_s=push_retry_backoff_s,
                timeout_s=10.0,
                accepted=lambda status: 200 <= status < 300,
            ),
            workers=4,
            name="dashscope-push",
        )
        self._limiter = SlidingWindowLimiter(query_rps, self._clock)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._tasks: dict[str, TranscriptionTask] = {}
        self._counters = BackendCounters()
        self._faults = faults or FaultPlan()
        self._dice = FaultDice(self._faults)
        self._pool = ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="dashscope-task")
        self._timers = Timers(self._clock)
        self._stopping = threading.Event()

    # -- settings ------------------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def stopping(self) -> threading.Event:
        return self._stopping

    @property
    def faults(self) -> FaultPlan:
        return self._faults

    def set_faults(self, plan: FaultPlan) -> None:
        """Swap the fault plan at run time (a new seeded dice comes with it)."""
        with self._lock:
            self._faults = plan
            self._dice = FaultDice(plan)

    def set_push_target(self, url: str | None, headers: Mapping[str, str] | None = None) -> None:
        """Point the EventBridge-style push elsewhere (None turns it off); headers kept unless given."""
        with self._lock:
            new_headers = dict(headers) if headers is not None else self._push.headers
            self._push = replace(self._push, target_url=url, headers=new_headers)

    @property
    def query_rps(self) -> int | None:
        return self._limiter.limit

    def _roll(self, rate: float) -> bool:
        with self._lock:
            return self._dice.roll(rate)

    def engine_for_run(self) -> SpeechEngine:
        return self._instant_engine if self._faults.instant else self.engine

    # -- counters and the job listing ------------------------------------------------------------

    @property
    def counters(self) -> BackendCounters:
        with self._lock:
            return BackendCounters(**vars(self._counters))

    def counter_values(self) -> dict[str, int]:
        return dict(vars(self.counters))

    def task_counters(self, task_id: str) -> TaskCounters | None:
        with self._lock:
            task = self._tasks.get(task_id)
            return None if task is None else TaskCounters(**vars(task.counters))

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self._counters, name, getattr(self._counters, name) + amount)
            self._changed.notify_all()

    def wait_for_counters(self, condition: Callable[[BackendCounters], bool], timeout: float) -> bool:
        """Block until ``condition(counters)`` holds (tests: wait on what happened, not on time)."""
        with self._changed:
            return self._changed.wait_for(lambda: condition(self._counters), timeout=timeout)

    def emulated_jobs(self) -> list[EmulatedJob]:
        """One row per file of every task (a task of 100 files is 100 rows), oldest first."""
        with self._lock:
            self._expire_finished()
            return [
                EmulatedJob(
                    task_id=task.task_id,
                    file_url=subtask.file_url,
                    state=task.listing_state(subtask),
                    created_at=iso_utc(task.submit_time),
                    finished_at=iso_utc(subtask.finished_at) if subtask.finished_at is not None else None,
                    audio_ms_total=subtask.progress.total_ms,
                    audio_ms_done=subtask.progress.done_ms,
                    lost_response=task.lost_answer is not None,
                )
                for task in sorted(self._tasks.values(), key=lambda t: t.submit_time)
                for subtask in task.subtasks
            ]

    def wait_for_task(self, task_id: str, timeout: float) -> TaskStatus:
        """Block until the task is final (SUCCEEDED, FAILED, CANCELED); TimeoutError if it is not."""
        with self._changed:
            done = self._changed.wait_for(lambda: self._tasks[task_id].status.is_final, timeout=timeout)
            status = self._tasks[task_id].status
        if not done:
            raise TimeoutError(f"DashScope task {task_id} still {status.value} after {timeout} s")
        return status

    def wait_pushes_idle(self, timeout: float) -> bool:
        """Block until every push (and its retries) has ended."""
        return self._pushes.wait_idle(timeout)

    # -- auth ------------------------------------------------------------------------------------

    def is_known_key(self, api_key: str | None) -> bool:
        return api_key is not None and api_key in self._key_ids

    def authenticate(self, authorization: str | None) -> str:
        """The API key from an ``Authorization: Bearer`` header, or a 401 DashScopeError."""
        if not authorization:
            raise DashScopeError(401, "InvalidApiKey", "No API-key provided.")
        scheme, _, key = authorization.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not self.is_known_key(key):
            raise DashScopeError(401, "InvalidApiKey", "Invalid API-key provided.")
        return key

    def _same_account(self, api_key: str, task: TranscriptionTask) -> bool:
        return self._accounts.get(api_key) == self._accounts.get(task.api_key)

    # -- file transcription ----------------------------------------------------------------------

    def submit(self, api_key: str, body: Any) -> TranscriptionTask:
        """Create a task (a copy comes back; ``lost_answer`` says whether its answer is to be lost)."""
        self.count("submit_calls")
        try:
            task = self._create_task(api_key, body)
        except DashScopeError:
            self.count("submit_rejected")
            raise
        # Real tasks sit in PENDING for a while; a timer on the clock keeps them there, no worker used.
        self._timers.call_at(task.submit_time + self._faults.processing_delay_s, lambda: self._enqueue(task))
        with self._lock:
            return _snapshot(task)

    def _create_task(self, api_key: str, body: Any) -> TranscriptionTask:
        if self._roll(self._faults.submit_error_rate):
            raise DashScopeError.for_status(self._faults.submit_error_status)
        if not isinstance(body, dict):
            raise DashScopeError(400, "InvalidParameter", "The request body is not a JSON object.")
        model = body.get("model")
        if not model:
            raise DashScopeError(400, "InvalidParameter", "Model is required.")
        if model not in FILE_TRANSCRIPTION_MODELS:
            raise DashScopeError(400, "InvalidParameter", f"Model not exist: {model}.")
        request_input = body.get("input")
        if not isinstance(request_input, dict) or not request_input.get("file_urls"):
            raise DashScopeError(
                400, "InvalidParameter", "input.file_urls is required and must not be empty."
            )
        try:
            request = SubmitRequest.model_validate(body)
        except ValidationError as error:
            raise DashScopeError(400, "InvalidParameter", describe_validation_error(error)) from error
        if len(request.input.file_urls) > self.max_files_per_task:
            raise DashScopeError(
                400,
                "InvalidParameter",
                f"Too many files: {len(request.input.file_urls)} > {self.max_files_per_task} per task.",
            )
        with self._lock:
            task = TranscriptionTask(
                task_id=str(uuid.uuid4()),
                request_id=str(uuid.uuid4()),
                model=request.model,
                api_key=api_key,
                parameters=request.parameters,
                subtasks=[Subtask(file_url=url) for url in request.input.file_urls],
                submit_time=self._clock.now(),
                lost_answer=roll_lost_answer(self._dice, self._faults),
            )
            self._expire_finished()
            self._tasks[task.task_id] = task
            self._counters.tasks_created += 1
            self._counters.responses_lost += task.lost_answer is not None
            self._changed.notify_all()
        return task

    def _enqueue(self, task: TranscriptionTask) -> None:
        with self._lock:
            if self._stopping.is_set() or task.status is not TaskStatus.PENDING:
                return
        try:
            self._pool.submit(self._run_task, task)
        except RuntimeError:  # pool shut down: the emulator is stopping
            return

    def query(self, api_key: str, task_id: str) -> TranscriptionTask | None:
        """A consistent copy of the task (results left out), or None if unknown, expired or not ours."""
        self._admit_query(api_key)
        self.count("query_calls")
        with self._lock:
            task = self._live_task(task_id)
            if task is None or not self._same_account(api_key, task):
                return None
            task.counters.query_calls += 1
            return _snapshot(task)

    def list_tasks(self, api_key: str, query: TaskListQuery) -> tuple[list[TranscriptionTask], int]:
        """One page of the caller's account's live tasks, newest first, and how many match in all."""
        self._admit_query(api_key)
        self.count("list_calls")
        start, end = query.window()
        with self._lock:
            self._expire_finished()
            matching = [
                _snapshot(task)
                for task in self._tasks.values()
                if not task.expired
                and self._same_account(api_key, task)
                and (query.status is None or task.status is query.status)
                and (query.model_name is None or task.model == query.model_name)
                and (query.api_key_id is None or self._key_ids.get(task.api_key) == query.api_key_id)
                and (query.region is None or query.region == self._push.region)
                and (start is None or task.submit_time >= start)
                and (end is None or task.submit_time <= end)
            ]
        matching.sort(key=lambda task: task.submit_time, reverse=True)
        first = (query.page_no - 1) * query.page_size
        return matching[first : first + query.page_size], len(matching)

    def _admit_query(self, api_key: str) -> None:
        """``GET /tasks…`` share one per-key rate limit, as the service's 20 QPS for /tasks."""
        if not self._limiter.allow(api_key):
            self.count("query_throttled")
            raise DashScopeError.throttled()

    def list_entry(self, task: TranscriptionTask) -> dict[str, Any]:
        """A task as ``GET /tasks`` lists it (times in epoch milliseconds, as the SDKs read them)."""
        push = self._push
        return {
            "api_key_id": self._key_ids.get(task.api_key, "0"),
            "caller_parent_id": push.account_id,
            "caller_uid": push.account_id,
            "end_time": _epoch_ms(task.end_time),
            "gmt_create": _epoch_ms(task.submit_time),
            "model_name": task.model,
            "region": push.region,
            "request_id": task.request_id,
            "start_time": _epoch_ms(task.scheduled_time),
            "status": task.status.value,
            "task_id": task.task_id,
            "user_api_unique_key": f"apikey:v1:audio:asr:transcription:{task.model}",
        }

    def cancel(self, api_key: str, task_id: str) -> TranscriptionTask:
        self.count("cancel_calls")
        with self._lock:
            task = self._live_task(task_id)
            if task is None or not self._same_account(api_key, task):
                raise DashScopeError(404, "NotFound", f"Task {task_id} does not exist or has expired.")
            if task.status is not TaskStatus.PENDING:
                raise DashScopeError(
                    400,
                    "UnsupportedOperation",
                    f"Failed to cancel the task: it is {task.status.value}; only PENDING tasks can be.",
                )
            for subtask in task.subtasks:
                subtask.status = TaskStatus.CANCELED
                subtask.finished_at = self._clock.now()
            self._finish(task, TaskStatus.CANCELED)
            return _snapshot(task)

    def result_document(self, task_id: str, index: int) -> dict[str, Any] | None:
        with self._lock:
            task = self._live_task(task_id)
            if task is None or not task.status.is_final or not 0 <= index < len(task.subtasks):
                return None
            document = task.subtasks[index].result
            if document is not None:
                self._counters.result_downloads += 1
            return document

    def result_path(self, task_id: str, index: int) -> str:
        return f"/results/{task_id}/{index}.json"

    def _live_task(self, task_id: str) -> TranscriptionTask | None:
        self._expire_finished()
        task = self._tasks.get(task_id)
        return None if task is None or task.expired else task

    def _expire_finished(self) -> None:
        """Tasks past their retention are expired: listed as such, their results gone; lock held."""
        self._counters.tasks_expired += Retention(self.retention_s).sweep(
            self._tasks.values(),
            now=self._clock.now(),
            plan=self._faults,
            finished_at=lambda task: task.end_time,
            drop_result=_drop_results,
        )

    def _finish(self, task: TranscriptionTask, status: TaskStatus) -> None:
        """Make the task final and push its event; lock held."""
        task.status = status
        task.end_time = self._clock.now()
        self._counters.tasks_finished += 1
        self._changed.notify_all()
        self._schedule_push(task)

    # -- the worker --------------------------------------------------------------------------------

    def _run_task(self, task: TranscriptionTask) -> None:
        with self._lock:
            if task.status is not TaskStatus.PENDING:
                return
            task.status = TaskStatus.RUNNING
            task.scheduled_time = self._clock.now()
            self._changed.notify_all()
        engine = self.engine_for_run()
        fail_job = self._roll(self._faults.job_failure_rate)
        for index, subtask in enumerate(task.subtasks):
            try:
                self._run_subtask(task, index, subtask, engine, fail_job)
            except Exception:  # one broken file must never wedge the task
                logger.exception("subtask %s/%d crashed", task.task_id, index)
                self._fail_subtask(subtask, "InternalError", _INTERNAL_ERROR_MESSAGE)
        with self._lock:
            if any(s.status is TaskStatus.SUCCEEDED for s in task.subtasks):
                status = TaskStatus.SUCCEEDED
            else:
                status = TaskStatus.FAILED
                first = next((s for s in task.subtasks if s.code), None)
                task.code = first.code if first else "InternalError"
                task.message = first.message if first else _INTERNAL_ERROR_MESSAGE
            self._finish(task, status)

    def _fail_subtask(self, subtask: Subtask, code: str, message: str) -> None:
        with self._lock:
            subtask.status = TaskStatus.FAILED
            subtask.code = code
            subtask.message = message
            subtask.finished_at = self._clock.now()

    def _run_subtask(
        self, task: TranscriptionTask, index: int, subtask: Subtask, engine: SpeechEngine, fail_job: bool
    ) -> None:
        with self._lock:
            subtask.status = TaskStatus.RUNNING
        try:
            audio = self._download(subtask.file_url)
        except _FileTooLarge:
            self._fail_subtask(subtask, "FILE_TOO_LARGE", "The audio file is too large.")
            return
        except (OSError, ValueError) as error:
            logger.info("download of %s failed: %s", subtask.file_url, error)
            self._fail_subtask(subtask, "InvalidFile.DownloadFailed", "The audio file cannot be downloaded.")
            return
        if fail_job:
            self._fail_subtask(subtask, "InternalError.Algo", "Transcription failed (injected fault).")
            return
        properties = probe_audio(audio)
        transcripts: list[dict[str, Any]] = []
        duration_ms = properties.duration_ms or 0
        if properties.duration_ms is not None:
            subtask.progress.total_ms = properties.duration_ms
        language = _single_hint(task.parameters.language_hints)
        channels = task.parameters.channel_id or [0]
        for pass_index, channel in enumerate(channels):
            try:
                recognition = engine.recognize(
                    audio,
                    language=language,
                    # A single channel 0 is the usual mono request: let the engine downmix.
                    channel=None if channels == [0] else channel,
                    word_timestamps=True,
                    on_progress=subtask.progress.reporter(pass_index, len(channels)),
                )
            except UnreadableAudio:
                self._fail_subtask(subtask, "FILE_PARSE_FAILED", "The audio file cannot be parsed.")
                return
            duration_ms = max(duration_ms, recognition.duration_ms)
            transcripts.append(_transcript_json(channel, recognition, task.parameters.diarization_enabled))
        subtask.progress.complete(duration_ms)
        if not any(t["sentences"] for t in transcripts):
            self._fail_subtask(
                subtask, "SUCCESS_WITH_NO_VALID_FRAGMENT", "No valid speech fragment was found in the audio."
            )
            return
        document = {
            "file_url": subtask.file_url,
            "properties": {
                "audio_format": properties.audio_format,
                "channels": list(range(max(properties.channels, 1))),
                "original_sampling_rate": properties.sample_rate or 16000,
                "original_duration_in_milliseconds": duration_ms,
            },
            "transcripts": transcripts,
        }
        with self._lock:
            subtask.result = document
            subtask.audio_duration_ms = duration_ms
            subtask.status = TaskStatus.SUCCEEDED
            subtask.finished_at = self._clock.now()

    def _download(self, url: str) -> bytes:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL scheme {scheme!r}")
        request = urllib.request.Request(url, headers={"User-Agent": "dashscope-emulator/1"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=self.download_timeout_s) as response:  # noqa: S310
            data: bytes = response.read(self.max_file_bytes + 1)
        if len(data) > self.max_file_bytes:
            raise _FileTooLarge(url)
        return data

    # -- EventBridge push ------------------------------------------------------------------------

    def build_event(self, task: TranscriptionTask) -> dict[str, Any]:
        """The full CloudEvent an EventBridge HTTP target receives for a finished task."""
        now = self._clock.now()
        push = self._push
        return {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "acs.dashscope",
            "type": "dashscope:System:AsyncTaskFinish",
            "subject": f"acs.dashscope:{push.region}:{push.account_id}:{task.task_id}",
            "time": iso_utc(task.end_time or now),
            "aliyunregionid": push.region,
            "aliyuneventbusname": "default",
            "aliyunaccountid": push.account_id,
            "aliyunoriginalaccountid": push.account_id,
            "aliyunpublishtime": iso_utc(now),
            "aliyunpublishaddr": "127.0.0.1",
            "datacontenttype": "application/json;charset=utf-8",
            "data": {
                "task_id": task.task_id,
                "task_status": task.status.value,
                "start_time": beijing_time(task.scheduled_time or task.submit_time, millis=False),
                "end_time": beijing_time(task.end_time or now, millis=False),
                "region": push.region,
                "request_id": task.request_id,
                "api_key_id": self._key_ids.get(task.api_key, "0"),
                "contain_result": False,
                "user_api_unique_key": f"apikey:v1:audio:asr:transcription:{task.model}",
            },
        }

    def _schedule_push(self, task: TranscriptionTask) -> None:
        """Roll the delivery faults for a finished task and hand its push over; lock held."""
        push = self._push
        if push.target_url is None or self._stopping.is_set():
            return
        assert task.end_time is not None
        faults = DeliveryFaults.roll(self._dice, self._faults)
        not_before = task.end_time + self._faults.callback_delay_s
        if faults.forged:
            self._counters.pushes_forged += 1
            self._send_push(push, self._forged_event(task), not_before, None)
        if faults.dropped:
            self._counters.pushes_dropped += 1
            return
        if faults.copies > 1:
            self._counters.pushes_duplicated += 1
        event = self.build_event(task)  # a duplicate is a redelivery: the same event id
        for _ in range(faults.copies):
            self._send_push(push, event, not_before, task)

    def _forged_event(self, task: TranscriptionTask) -> dict[str, Any]:
        """An event for a task the receiver's key cannot see: another account's, or never submitted."""
        foreign = [
            t for t in self._tasks.values() if not t.expired and not self._same_account(task.api_key, t)
        ]
        final = [t for t in foreign if t.status.is_final]
        if final or foreign:
            return self.build_event(self._dice.choose(final or foreign))
        phantom = replace(_snapshot(task), task_id=str(uuid.uuid4()), request_id=str(uuid.uuid4()))
        return self.build_event(phantom)

    def _send_push(
        self, push: PushSettings, event: dict[str, Any], not_before: float, task: TranscriptionTask | None
    ) -> None:
        assert push.target_url is not None

        def count(outcome: DeliveryEvent) -> None:
            if task is None:  # a forged push counts only as forged
                return
            with self._lock:
                if outcome is DeliveryEvent.ATTEMPT:
                    self._counters.push_attempts += 1
                    task.counters.push_attempts += 1
                elif outcome is DeliveryEvent.SENT:
                    self._counters.pushes_sent += 1
                    task.counters.pushes_sent += 1
                else:
                    self._counters.pushes_failed += 1
                self._changed.notify_all()

        def headers() -> dict[str, str]:
            # The receiver checks this against its own clock, so it stays on real time.
            stamp = str(int(time.time() * 1000))
            return {"Content-Type": JSON_UTF8, **push.headers, "x-eventbridge-signature-timestamp": stamp}

        body = json.dumps(event, ensure_ascii=False).encode("utf-8")
        self._pushes.send(push.target_url, body, not_before=not_before, headers=headers, on_event=count)

    # -- realtime --------------------------------------------------------------------------------

    def open_stream(self, task_id: str, payload: Any) -> RealtimeStream:
        """Validate a ``run-task`` payload; DashScopeError carries the task-failed code/message."""
        if not isinstance(payload, dict):
            raise DashScopeError(400, "InvalidParameter", "run-task payload must be a JSON object.")
        model = payload.get("model")
        if model not in GUMMY_MODELS and model not in PARAFORMER_REALTIME_MODELS:
            raise DashScopeError(400, "ModelNotFound", f"Model not found ({model})!")
        try:
            parameters = RealtimeParameters.model_validate(payload.get("parameters") or {})
        except ValidationError as error:
            raise DashScopeError(400, "InvalidParameter", describe_validation_error(error)) from error
        if model in GUMMY_MODELS and parameters.translation_enabled:
            targets = parameters.translation_target_languages or []
            if len(targets) != 1:
                raise DashScopeError(
                    400, "InvalidParameter", "translation_target_languages must name exactly one language."
                )
            if targets[0] not in SUPPORTED_TRANSLATION_TARGETS:
                raise DashScopeError(
                    400,
                    "InvalidParameter",
                    f"Translation target {targets[0]!r} is not supported by this emulator (only 'en').",
                )
        if model in GUMMY_MODELS and not (parameters.transcription_enabled or parameters.translation_enabled):
            raise DashScopeError(
                400, "InvalidParameter", "Enable transcription_enabled or translation_enabled (or both)."
            )
        return RealtimeStream(
            task_id=task_id,
            model=model,
            parameters=parameters,
            engine=self.engine_for_run(),
            interim_interval_s=self.interim_interval_s,
        )

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        self._stopping.set()
        self._clock.notify()
        self._timers.cancel_all()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pushes.close()


class _FileTooLarge(Exception):
    pass


def _drop_results(task: TranscriptionTask) -> None:
    for subtask in task.subtasks:
        subtask.result = None


def _snapshot(task: TranscriptionTask) -> TranscriptionTask:
    """A copy safe to read outside the lock; result documents stay behind (served on their own)."""
    return replace(
        task,
        subtasks=[replace(s, result=None) for s in task.subtasks],
        counters=replace(task.counters),
    )


def _single_hint(hints: Sequence[str] | None) -> str | None:
    """One hint is a language to force; several (the default zh+en) mean "detect"."""
    if hints and len(hints) == 1 and hints[0] not in ("auto", ""):
        return hints[0]
    return None


def _word_json(word: RecognizedWord) -> dict[str, Any]:
    text, punctuation = split_punctuation(word.text)
    return {"begin_time": word.start_ms, "end_time": word.end_ms, "text": text, "punctuation": punctuation}


def _transcript_json(channel: int, recognition: Recognition, diarization: bool) -> dict[str, Any]:
    sentences: list[dict[str, Any]] = []
    for segment in recognition.segments:
        text = segment.text.strip()
        if not text:
            continue
        sentence: dict[str, Any] = {
            "begin_time": segment.start_ms,
            "end_time": segment.end_ms,
            "text": text,
            "sentence_id": len(sentences) + 1,
        }
        if diarization:
            # The offline engine does not diarise: everything is speaker 0.
            sentence["speaker_id"] = 0
        sentence["words"] = [_word_json(w) for w in segment.words if w.text.strip()]
        sentences.append(sentence)
    speech_ms = sum(max(s["end_time"] - s["begin_time"], 0) for s in sentences)
    return {
        "channel_id": channel,
        "content_duration_in_milliseconds": speech_ms,
        "text": " ".join(s["text"] for s in sentences),
        "sentences": sentences,
    }


# ---------------------------------------------------------------------------------------------
# Realtime (WebSocket) state
# ---------------------------------------------------------------------------------------------


class RealtimeParameters(BaseModel):
    model_config = ConfigDict(extra="allow")

    sample_rate: int = Field(default=16000, gt=0)
    format: str = "pcm"
    source_language: str | None = None
    language_hints: list[str] | None = None
    transcription_enabled: bool = True
    translation_enabled: bool = False
    translation_target_languages: list[str] | None = None

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        value = value.lower()
        if value not in REALTIME_FORMATS:
            raise ValueError(f"unsupported audio format {value!r}; use one of {sorted(REALTIME_FORMATS)}")
        return value


@dataclass(frozen=True)
class StreamWord:
    begin_ms: int
    end_ms: int
    text: str
    punctuation: str


@dataclass(frozen=True)
class StreamSentence:
    """One result-generated event's worth of text, for the transcription or one translation."""

    sentence_id: int
    begin_ms: int
    end_ms: int
    text: str
    words: tuple[StreamWord, ...]
    final: bool
    translation: StreamSentence | None = None
    language: str | None = None


@dataclass(frozen=True)
class StreamSnapshot:
    """The audio one engine pass works on, taken on the event loop before the pass runs."""

    audio: bytes
    window_start_ms: int
    received_ms: int | None
    final: bool


class RealtimeStream:
    """One WebSocket task: buffers audio and turns it into interim and final sentences.

    PCM (and 16-bit mono WAV) is sliceable, so passes only re-recognise the audio after the last
    final sentence and interim results come every ``interim_interval_s`` of audio. Other formats
    cannot be cut without decoding, so they get one pass when the client finishes.
    """

    # A sentence counts as finished once it ended this long before the newest audio.
    STABLE_MARGIN_MS = 500
    # Past this much unsettled audio everything heard is made final, so a pass never re-reads
    # more than this (an engine that never splits a monologue would otherwise cost O(n²)).
    MAX_OPEN_WINDOW_MS = 20_000

    def __init__(
        self,
        *,
        task_id: str,
        model: str,
        parameters: RealtimeParameters,
        engine: SpeechEngine,
        interim_interval_s: float,
    ) -> None:
        self.task_id = task_id
        self.model = model
        self.parameters = parameters
        self.engine = engine
        self.is_gummy = model in GUMMY_MODELS
        self.single_sentence = model == "gummy-chat-v1"
        self.interim_interval_ms = max(int(interim_interval_s * 1000), 1)
        self.sample_rate = parameters.sample_rate
        self._raw = bytearray()
        self._pcm = bytearray()
        self._sliceable = parameters.format in ("pcm", "wav")
        self._wav_layout_known = parameters.format == "pcm"
        self._finalized_until_ms = 0
        self._last_pass_received_ms = 0
        self._next_sentence_id = 0 if self.is_gummy else 1
        self._finals_emitted = 0
        self.bytes_received = 0

    @property
    def translation_language(self) -> str | None:
        if (
            self.is_gummy
            and self.parameters.translation_enabled
            and self.parameters.translation_target_languages
        ):
            return self.parameters.translation_target_languages[0]
        return None

    @property
    def language(self) -> str | None:
        source = self.parameters.source_language
        if source and source != "auto":
            return source
        return _single_hint(self.parameters.language_hints)

    def append(self, chunk: bytes) -> None:
        self.bytes_received += len(chunk)
        if not self._sliceable:
            self._raw.extend(chunk)
            return
        if self._wav_layout_known:
            self._pcm.extend(chunk)
            return
        self._raw.extend(chunk)
        layout = parse_wav_header(bytes(self._raw[:65536]))
        if layout is None:
            if len(self._raw) > 65536:  # no header after 64 KiB: hand it over whole at the end
                self._sliceable = False
            return
        if layout.audio_format != 1 or layout.sample_width != 2 or layout.channels != 1:
            self._sliceable = False
            return
        self.sample_rate = layout.sample_rate
        self._wav_layout_known = True
        self._pcm.extend(self._raw[layout.data_offset :])
        self._raw.clear()

    @property
    def received_ms(self) -> int | None:
        if not (self._sliceable and self._wav_layout_known):
            return None
        return int(len(self._pcm) // 2 * 1000 / self.sample_rate)

    def interim_due(self) -> bool:
        received = self.received_ms
        if received is None:
            return False
        if self.single_sentence and self._finals_emitted:
            return False
        return received - self._last_pass_received_ms >= self.interim_interval_ms

    def snapshot(self, *, final: bool) -> StreamSnapshot | None:
        """Take the audio for the next pass (None when there is nothing left to recognise)."""
        if self.single_sentence and self._finals_emitted:
            return None
        received = self.received_ms
        if received is None:
            if not final:
                return None
            audio = bytes(self._raw)
            if not audio:
                return None
            return StreamSnapshot(audio=audio, window_start_ms=0, received_ms=None, final=True)
        self._last_pass_received_ms = received
        start_byte = int(self._finalized_until_ms * self.sample_rate / 1000) * 2
        window = bytes(self._pcm[start_byte:])
        if len(window) < 2 * self.sample_rate // 100:  # under 10 ms: nothing to hear
            return None
        return StreamSnapshot(
            audio=pcm_to_wav(window, self.sample_rate),
            window_start_ms=self._finalized_until_ms,
            received_ms=received,
            final=final,
        )

    def recognize(self, snapshot: StreamSnapshot) -> list[StreamSentence]:
        """Run the engine on a snapshot (blocking; call it off the event loop, one at a time).

        Raises ``UnreadableAudio`` when the bytes do not decode.
        """
        offset = snapshot.window_start_ms
        limit = snapshot.received_ms
        base = self.engine.recognize(snapshot.audio, language=self.language, word_timestamps=True)
        segments = [_shift(s, offset, limit) for s in base.segments if s.text.strip()]
        translated: list[RecognizedSegment] = []
        target = self.translation_language
        if target is not None:
            english = self.engine.recognize(
                snapshot.audio, language=self.language, translate=True, word_timestamps=True
            )
            translated = [_shift(s, offset, limit) for s in english.segments if s.text.strip()]
        if not segments and translated:  # transcription found nothing but translation did
            segments = translated
        sentences: list[StreamSentence] = []
        open_segments: list[RecognizedSegment] = []
        next_id = self._next_sentence_id
        window_full = limit is not None and limit - offset >= self.MAX_OPEN_WINDOW_MS
        for index, segment in enumerate(segments):
            settled = (
                snapshot.final
                or limit is None
                or window_full
                or (index < len(segments) - 1 and segment.end_ms <= limit - self.STABLE_MARGIN_MS)
            )
            if open_segments or not settled:
                open_segments.append(segment)
                continue
            if self.single_sentence and (self._finals_emitted or sentences):
                break
            sentences.append(_build_sentence(next_id, [segment], final=True))
            next_id += 1
        if open_segments and not (self.single_sentence and sentences):
            sentences.append(_build_sentence(next_id, open_segments, final=False))
        if target is not None:
            sentences = _attach_translations(sentences, translated, target)
        finals = [s for s in sentences if s.final]
        self._next_sentence_id = next_id
        self._finals_emitted += len(finals)
        if finals:
            self._finalized_until_ms = max(self._finalized_until_ms, finals[-1].end_ms)
        return sentences


def _build_sentence(
    sentence_id: int, segments: Sequence[RecognizedSegment], *, final: bool, language: str | None = None
) -> StreamSentence:
    words = tuple(
        StreamWord(w.start_ms, w.end_ms, *split_punctuation(w.text))
        for segment in segments
        for w in segment.words
        if w.text.strip()
    )
    return StreamSentence(
        sentence_id=sentence_id,
        begin_ms=segments[0].start_ms if segments else 0,
        end_ms=segments[-1].end_ms if segments else 0,
        text=" ".join(s.text.strip() for s in segments if s.text.strip()),
        words=words,
        final=final,
        language=language,
    )


def _shift(segment: RecognizedSegment, offset_ms: int, limit_ms: int | None) -> RecognizedSegment:
    """Move window-relative times to stream time, never past the audio received."""

    def at(ms: int) -> int:
        moved = ms + offset_ms
        return moved if limit_ms is None else min(moved, max(limit_ms, offset_ms))

    return RecognizedSegment(
        start_ms=at(segment.start_ms),
        end_ms=max(at(segment.end_ms), at(segment.start_ms)),
        text=segment.text,
        words=[
            RecognizedWord(start_ms=at(w.start_ms), end_ms=max(at(w.end_ms), at(w.start_ms)), text=w.text)
            for w in segment.words
        ],
    )


def _attach_translations(
    sentences: list[StreamSentence], translated: list[RecognizedSegment], language: str
) -> list[StreamSentence]:
    """Give each sentence the translated segments that overlap it most (nearest when none overlap)."""
    assigned: list[list[RecognizedSegment]] = [[] for _ in sentences]
    if sentences:
        for segment in translated:
            best = max(
                range(len(sentences)),
                key=lambda i: (
                    _overlap(sentences[i], segment),
                    -abs((sentences[i].begin_ms + sentences[i].end_ms) - (segment.start_ms + segment.end_ms)),
                ),
            )
            assigned[best].append(segment)
    result = []
    for sentence, segments in zip(sentences, assigned, strict=True):
        translation = _build_sentence(sentence.sentence_id, segments, final=sentence.final, language=language)
        if not segments:
            translation = StreamSentence(
                sentence_id=sentence.sentence_id,
                begin_ms=sentence.begin_ms,
                end_ms=sentence.end_ms,
                text="",
                words=(),
                final=sentence.final,
                language=language,
            )
        result.append(
            StreamSentence(
                sentence_id=sentence.sentence_id,
                begin_ms=sentence.begin_ms,
                end_ms=sentence.end_ms,
                text=sentence.text,
                words=sentence.words,
                final=sentence.final,
                translation=translation,
            )
        )
    return result


def _overlap(sentence: StreamSentence, segment: RecognizedSegment) -> int:
    return max(0, min(sentence.end_ms, segment.end_ms) - max(sentence.begin_ms, segment.start_ms))


def audio_seconds(duration_ms: int) -> int:
    """DashScope bills whole seconds, rounded up."""
    return math.ceil(duration_ms / 1000) if duration_ms > 0 else 0
