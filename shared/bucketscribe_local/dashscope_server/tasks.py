"""File transcription: the tasks of the DashScope-compatible emulator, kept apart from the wire.

``DashScopeBackend`` owns file-transcription tasks (one subtask per file URL), the worker pool
that downloads and recognises them, result documents, expiry, the per-key query limiter, the
accounts the API keys belong to, the EventBridge-style push and the fault knobs; it also holds
the settings and counters of the real-time endpoint (``streams.py`` has its state).
``responses.py`` turns all of this into DashScope's JSON.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ValidationError

from bucketscribe.domain.redaction import redact
from bucketscribe_local.dashscope_server.errors import (
    INTERNAL_ERROR_MESSAGE,
    DashScopeError,
    describe_validation_error,
)
from bucketscribe_local.dashscope_server.requests import (
    FILE_TRANSCRIPTION_MODELS,
    SubmitRequest,
    TaskListQuery,
    TranscriptionParameters,
    single_language_hint,
)
from bucketscribe_local.dashscope_server.wire_formats import (
    TaskStatus,
    beijing_time,
    epoch_ms,
    split_punctuation,
)
from bucketscribe_local.emulator_kit.audio import probe_audio
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
    RecognizedWord,
    SpeechEngine,
    UnreadableAudio,
    engine_name,
)
from bucketscribe_local.stream_decoding import StreamDecoder, stream_decoder_for

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_S = 24 * 3600.0
JSON_UTF8 = "application/json;charset=utf-8"


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


class BackendCounters(BaseModel):
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


class DashScopeBackend(EmulatorBackend[BackendCounters]):
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
        super().__init__(counters=BackendCounters(), faults=faults, clock=clock)
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
            # EventBridge delivers many events at once: a receiver holding one (a push waiting
            # for its task's record) does not hold up the others.
            workers=16,
            name="dashscope-push",
        )
        self._limiter = SlidingWindowLimiter(query_rps, self._clock)
        self._tasks: dict[str, TranscriptionTask] = {}
        self._pool = ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="dashscope-task")
        self._stream_decoders: dict[int, StreamDecoder] = {}

    # -- settings ------------------------------------------------------------------------------

    def set_push_target(self, url: str | None, headers: Mapping[str, str] | None = None) -> None:
        """Point the EventBridge-style push elsewhere (None turns it off); headers kept unless given."""
        with self._lock:
            new_headers = dict(headers) if headers is not None else self._push.headers
            self._push = replace(self._push, target_url=url, headers=new_headers)

    @property
    def query_rps(self) -> int | None:
        return self._limiter.limit

    def engine_for_run(self) -> SpeechEngine:
        return self._instant_engine if self.faults.instant else self.engine

    def stream_decoder(self) -> StreamDecoder:
        """What runs the real-time streams' recognition passes, for the engine of the moment: one
        per engine, shared by every stream of this backend (so that their passes batch together)."""
        engine = self.engine_for_run()
        with self._lock:
            decoder = self._stream_decoders.get(id(engine))
            if decoder is None:
                decoder = self._stream_decoders[id(engine)] = stream_decoder_for(engine)
            return decoder

    # -- counters and the job listing ------------------------------------------------------------

    @property
    def counters(self) -> BackendCounters:
        with self._lock:
            return self._counters.model_copy()

    def task_counters(self, task_id: str) -> TaskCounters | None:
        with self._lock:
            task = self._tasks.get(task_id)
            return None if task is None else TaskCounters(**vars(task.counters))

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
        self._timers.call_at(task.submit_time + self.faults.processing_delay_s, lambda: self._enqueue(task))
        with self._lock:
            return _snapshot(task)

    def _create_task(self, api_key: str, body: Any) -> TranscriptionTask:
        if self.roll(self.faults.submit_error_rate):
            raise DashScopeError.for_status(self.faults.submit_error_status)
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
                lost_answer=roll_lost_answer(self._dice),
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
        start, end = query.start_time, query.end_time
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
            "end_time": epoch_ms(task.end_time),
            "gmt_create": epoch_ms(task.submit_time),
            "model_name": task.model,
            "region": push.region,
            "request_id": task.request_id,
            "start_time": epoch_ms(task.scheduled_time),
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
            plan=self.faults,
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
        fail_job = self.roll(self.faults.job_failure_rate)
        for index, subtask in enumerate(task.subtasks):
            try:
                self._run_subtask(task, index, subtask, engine, fail_job)
            except Exception:  # one broken file must never wedge the task
                logger.exception("subtask %s/%d crashed", task.task_id, index)
                self._fail_subtask(subtask, "InternalError", INTERNAL_ERROR_MESSAGE)
        with self._lock:
            if any(s.status is TaskStatus.SUCCEEDED for s in task.subtasks):
                status = TaskStatus.SUCCEEDED
            else:
                status = TaskStatus.FAILED
                first = next((s for s in task.subtasks if s.code), None)
                task.code = first.code if first else "InternalError"
                task.message = first.message if first else INTERNAL_ERROR_MESSAGE
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
            audio = fetch_media(
                subtask.file_url,
                max_bytes=self.max_file_bytes,
                timeout_s=self.download_timeout_s,
                user_agent="dashscope-emulator/1",
            )
        except MediaTooLarge:
            self._fail_subtask(subtask, "FILE_TOO_LARGE", "The audio file is too large.")
            return
        except MediaUnreachable as error:
            logger.info("download of %s failed: %s", redact(subtask.file_url), redact(str(error)))
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
        language = single_language_hint(task.parameters.language_hints)
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
                # Not in DashScope's format: which engine really produced this transcript.
                "engine": engine_name(engine),
            },
            "transcripts": transcripts,
        }
        with self._lock:
            subtask.result = document
            subtask.audio_duration_ms = duration_ms
            subtask.status = TaskStatus.SUCCEEDED
            subtask.finished_at = self._clock.now()

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

    def task_finished_event(self, task_id: str) -> dict[str, Any]:
        """The event a finished task's push carries, for a test or benchmark that delivers it
        itself (with the push target off). Each call makes a new event id: deliver the same body
        again for a redelivery."""
        with self._lock:
            task = self._tasks[task_id]
            if not task.status.is_final:
                raise ValueError(f"task {task_id} is {task.status.value}, not finished")
            return self.build_event(_snapshot(task))

    def _schedule_push(self, task: TranscriptionTask) -> None:
        """Hand a finished task's push over under the delivery faults; lock held."""
        push = self._push
        if push.target_url is None or self._stopping.is_set():
            return
        assert task.end_time is not None

        def count(outcome: DeliveryEvent) -> None:
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

        faults = self._pushes.notify(
            push.target_url,
            dice=self._dice,
            finished_at=task.end_time,
            body=_json_body(self.build_event(task)),  # a duplicate is a redelivery: the same event id
            forged_body=lambda: _json_body(self._forged_event(task)),
            headers=headers,
            on_event=count,
        )
        self._counters.pushes_dropped += faults.dropped
        self._counters.pushes_duplicated += faults.copies > 1
        self._counters.pushes_forged += faults.forged

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

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        super().close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pushes.close()
        with self._lock:
            decoders, self._stream_decoders = list(self._stream_decoders.values()), {}
        for decoder in decoders:
            decoder.close()


def _json_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


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
    # What the service bills and reports: the speech it detected, not the text it produced, so
    # speech it heard but could not transcribe shows as a shortfall (coverage reads it).
    sentence_ms = sum(max(s["end_time"] - s["begin_time"], 0) for s in sentences)
    detected = recognition.speech_ms
    speech_ms = detected if detected is not None else sentence_ms
    return {
        "channel_id": channel,
        "content_duration_in_milliseconds": speech_ms,
        "text": " ".join(s["text"] for s in sentences),
        "sentences": sentences,
        # Not in DashScope's format: the language the offline engine ran with on this channel.
        "language": recognition.language,
    }
