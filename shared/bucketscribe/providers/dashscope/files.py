"""Alibaba DashScope Paraformer file-transcription adapter, on the real ``dashscope`` SDK.

``dashscope`` costs ~430 ms to import, so it is imported on first use only.
One task carries up to ``max_files_per_task`` file URLs; there is no per-task
callback URL (completion comes as an EventBridge push, or by polling), and
each file of a task succeeds or fails on its own (``subtask_status``).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

from bucketscribe.domain.job import JobError
from bucketscribe.domain.media_routing import MediaRequirements
from bucketscribe.domain.profile import Profile
from bucketscribe.ports.provider import (
    FileOutcome,
    ProviderError,
    Push,
    SubmitItem,
    SubmitReceipt,
    TaskResult,
    TaskSearch,
    TaskStatus,
    file_key,
)
from bucketscribe.providers.dashscope.options import DASHSCOPE_V2_MODELS, DashScopeOptions
from bucketscribe.providers.dashscope.push import pushed
from bucketscribe.providers.dashscope.rate_limit import RateLimiter
from bucketscribe.providers.dashscope.result import (
    DashScopeResultError,
    DashScopeTranscription,
    reported_speech_ms,
    transcript_from_dashscope,
)
from bucketscribe.providers.wire_errors import request_may_have_arrived, status_may_have_taken_effect

# The API overview allows 100 URLs per task; a newer SDK page says 1. Both work here (a setting).
DEFAULT_MAX_FILES_PER_TASK = 100
QUERY_RATE_PER_S = 20.0
# Requests are spaced evenly (no bursts) at 90 % of the quota, so no 1-second window of the
# service's sliding limit ever holds more than it allows.
QUOTA_SHARE = 0.9
RETRYABLE_CODES = frozenset(
    {"Throttling", "Throttling.RateQuota", "Throttling.AllocationQuota", "InternalError"}
)
PENDING_STATES = frozenset({"PENDING", "RUNNING", "SUSPENDED"})
# DashScope writes task times in Beijing time without a zone ("2025-02-13 17:31:20.681"), and the
# task listing takes its window as "YYYYMMDDhhmmss" in the same clock.
BEIJING = timezone(timedelta(hours=8))
LIST_PAGE_SIZE = 100
# The formats of the overview's feature table (aac, amr, avi, flac, flv, m4a, mkv, mov, mp3, mp4,
# mpeg, ogg, opus, wav, webm, wma, wmv; any channel count), by container family; the codecs in
# them are whatever those files usually hold, so none is ruled out.
DASHSCOPE_CONTAINERS = frozenset(
    {"adts", "amr", "avi", "flac", "flv", "mp4", "matroska", "mp3", "mpeg", "ogg", "wav", "asf"}
)
# ≤ 2 GB and ≤ 12 h per file (providers.md §1.6).
DASHSCOPE_MAX_BYTES = 2 * 1024**3
DASHSCOPE_MAX_DURATION_MS = 12 * 3600 * 1000


class DashScopeConfig(BaseModel):
    api_key: SecretStr
    base_http_url: str | None = None  # e.g. http://127.0.0.1:PORT/api/v1 for the emulator
    workspace: str | None = None
    max_files_per_task: int = DEFAULT_MAX_FILES_PER_TASK
    throttle_retries: int = 4
    throttle_backoff_s: float = 0.5
    # Result files are small JSON; a short timeout keeps a push inside API Gateway's 29 s.
    result_timeout_s: float = 8.0


class DashScopeProvider:
    """A ``TaskProvider`` that ``SearchesTasks`` (its task listing by creation time) and
    ``Pushes`` (task-finished events through EventBridge); it takes no callback URL."""

    name = "dashscope"

    def __init__(
        self,
        config: DashScopeConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        decodes_any_media: bool = False,
    ) -> None:
        self._config = config
        # An endpoint backed by an engine that reads whatever ffmpeg reads (the local emulator).
        self._decodes_any_media = decodes_any_media
        self.max_files_per_task = config.max_files_per_task
        self._sleep = sleep
        self._submit_limits: dict[str, RateLimiter] = {}
        self._query_limit = RateLimiter(QUERY_RATE_PER_S * QUOTA_SHARE, burst=1)

    def model_name(self, profile: Profile) -> str:
        return DashScopeOptions.of(profile).model

    def media_requirements(self, profile: Profile) -> MediaRequirements:
        options = DashScopeOptions.of(profile)
        model = options.model
        documented = not self._decodes_any_media
        return MediaRequirements(
            provider=self.name,
            profile=profile.name,
            decodes=dict.fromkeys(DASHSCOPE_CONTAINERS) if documented else None,
            takes_video=True,
            max_bytes=DASHSCOPE_MAX_BYTES,
            max_duration_ms=DASHSCOPE_MAX_DURATION_MS,
            # v2/v1 take any rate; the 8k models 8 kHz, mtl-v1 16 kHz or more (overview).
            sample_rate=8000 if "8k" in model and documented else None,
            min_sample_rate=16000 if model == "paraformer-mtl-v1" and documented else None,
            channels_needed=options.channels_needed,
            channels_wanted=options.channel_expectation(),
        )

    def _sdk(self) -> Any:
        from dashscope.audio.asr import Transcription

        return Transcription

    def _common(self) -> dict[str, Any]:
        common: dict[str, Any] = {"api_key": self._config.api_key.get_secret_value()}
        if self._config.workspace:
            common["workspace"] = self._config.workspace
        if self._config.base_http_url:
            common["base_address"] = self._config.base_http_url
        return common

    def _submit_limit(self, model: str) -> RateLimiter:
        if model not in self._submit_limits:
            quota = 20.0 if model in DASHSCOPE_V2_MODELS else 10.0
            self._submit_limits[model] = RateLimiter(quota * QUOTA_SHARE, burst=1)
        return self._submit_limits[model]

    def submit(self, items: Sequence[SubmitItem], profile: Profile) -> list[SubmitReceipt]:
        if not items:
            return []
        if len(items) > self.max_files_per_task:
            raise ValueError(f"{len(items)} files exceed the {self.max_files_per_task} allowed per task")
        options = DashScopeOptions.of(profile)
        transcription = self._sdk()

        def call() -> Any:
            self._submit_limit(options.model).acquire()
            return transcription.async_call(
                model=options.model,
                file_urls=[item.media_url for item in items],
                **options.parameters(),
                **self._common(),
            )

        response = self._with_backoff(call)
        task_id = response.output.task_id if response.output else None
        if not task_id:
            raise ProviderError(
                "NO_TASK_ID", "DashScope accepted the request but returned no task id", retryable=True
            )
        return [SubmitReceipt(job_id=item.job_id, task_id=task_id) for item in items]

    def fetch(self, task_id: str) -> TaskResult:
        transcription = self._sdk()

        def call() -> Any:
            self._query_limit.acquire()
            return transcription.fetch(task_id, **self._common())

        output = dict(self._with_backoff(call).output or {})
        status = str(output.get("task_status", "UNKNOWN"))
        created_at = _beijing_time(output.get("submit_time"))
        if status in PENDING_STATES:
            return TaskResult(task_id=task_id, status=TaskStatus.PENDING, created_at=created_at)
        if status == "UNKNOWN":
            error = JobError(
                code="TASK_UNKNOWN", message="DashScope does not know this task (expired after 24 h?)"
            )
            return TaskResult(task_id=task_id, status=TaskStatus.NOT_FOUND, error=error)
        files = [self._file_outcome(item) for item in output.get("results") or []]
        if status in ("FAILED", "CANCELED") and not files:
            error = JobError(
                code=str(output.get("code") or f"TASK_{status}"),
                message=str(output.get("message") or f"the DashScope task was {status.lower()}"),
            )
            return TaskResult(task_id=task_id, status=TaskStatus.FAILED, error=error, created_at=created_at)
        overall = TaskStatus.DONE if any(f.status is TaskStatus.DONE for f in files) else TaskStatus.FAILED
        return TaskResult(task_id=task_id, status=overall, files=files, created_at=created_at)

    def search_tasks(self, start: datetime, end: datetime, files: set[str]) -> TaskSearch:
        """List this key's tasks created in the window; a finished one names its files."""
        search = TaskSearch()
        for task_id in self._listed_task_ids(start, end):
            result = self.fetch(task_id)
            if result.status is TaskStatus.PENDING:
                search.undecided += 1
                continue
            for outcome in result.files:
                key = file_key(outcome.file_url) if outcome.file_url else None
                if key in files:
                    search.found[key] = task_id
        return search

    def parse_push(self, body: str, header: Callable[[str], str | None]) -> Push:
        return pushed(body, header)

    def _listed_task_ids(self, start: datetime, end: datetime) -> list[str]:
        transcription = self._sdk()
        window = {
            "start_time": start.astimezone(BEIJING).strftime("%Y%m%d%H%M%S"),
            "end_time": end.astimezone(BEIJING).strftime("%Y%m%d%H%M%S"),
        }
        task_ids: list[str] = []
        for page in range(1, 1000):

            def call(page_no: int = page) -> Any:
                self._query_limit.acquire()
                return transcription.list(
                    page_no=page_no, page_size=LIST_PAGE_SIZE, **window, **self._common()
                )

            output = dict(self._with_backoff(call).output or {})
            listed = output.get("data") or []
            task_ids.extend(
                str(item["task_id"]) for item in listed if isinstance(item, dict) and item.get("task_id")
            )
            if len(listed) < LIST_PAGE_SIZE or page >= int(output.get("total_page") or page):
                break
        return task_ids

    def _file_outcome(self, item: dict[str, Any]) -> FileOutcome:
        file_url = str(item.get("file_url") or "")
        if item.get("subtask_status") != "SUCCEEDED":
            error = JobError(
                code=str(item.get("code") or "SUBTASK_FAILED"),
                message=str(item.get("message") or "DashScope could not transcribe this file"),
            )
            return FileOutcome(status=TaskStatus.FAILED, file_url=file_url, error=error)
        # Downloaded per job by load_result, so a caller with a time budget pays only for what it uses.
        url = str(item.get("transcription_url") or "")
        return FileOutcome(status=TaskStatus.DONE, file_url=file_url, result_url=url)

    def load_result(self, outcome: FileOutcome) -> FileOutcome:
        if outcome.transcript is not None or not outcome.result_url:
            return outcome
        try:
            raw = self._download_result(outcome.result_url)
            parsed = DashScopeTranscription.parse(raw)
            transcript = transcript_from_dashscope(parsed)
        except (OSError, ValueError, DashScopeResultError) as exc:
            # The result link expires 24 h after the task: a fetch failure is worth a retry later.
            raise ProviderError(
                "RESULT_UNAVAILABLE", f"cannot read the result file: {exc}", retryable=True
            ) from exc
        update = {"transcript": transcript, "raw": raw, "reported_speech_ms": reported_speech_ms(parsed)}
        return outcome.model_copy(update=update)

    def _download_result(self, url: str) -> dict[str, Any]:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"unexpected result URL scheme in {url[:40]!r}")
        with urllib.request.urlopen(url, timeout=self._config.result_timeout_s) as response:  # noqa: S310
            data = json.loads(response.read())
        if not isinstance(data, dict):
            raise ValueError("the result file is not a JSON object")
        return data

    def _with_backoff(self, call: Callable[[], Any]) -> Any:
        """Run an SDK call; back off on throttling; turn failures into ``ProviderError``."""
        delay = self._config.throttle_backoff_s
        for attempt in range(self._config.throttle_retries + 1):
            try:
                response = call()
            except Exception as exc:  # the SDK raises requests/aiohttp errors of many kinds
                raise ProviderError(
                    "DASHSCOPE.UNREACHABLE",
                    str(exc) or type(exc).__name__,
                    retryable=True,
                    maybe_done=request_may_have_arrived(exc),
                ) from exc
            status = int(getattr(response, "status_code", 0) or 0)
            if status == 200:
                return response
            code = str(getattr(response, "code", "") or f"HTTP.{status}")
            message = str(getattr(response, "message", "") or "no message")
            throttled = status == 429 or code.startswith("Throttling")
            if throttled and attempt < self._config.throttle_retries:
                self._sleep(delay)
                delay *= 2
                continue
            retryable = throttled or code in RETRYABLE_CODES or status >= 500 or status in (401, 403)
            raise ProviderError(
                code,
                message,
                retryable=retryable,
                maybe_done=status_may_have_taken_effect(status),
                over_capacity=throttled,
            )
        raise AssertionError("unreachable")  # pragma: no cover


def _beijing_time(value: object) -> datetime | None:
    """A DashScope task time ("2025-02-13 17:31:20.681", Beijing) as an aware time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=BEIJING)
    except ValueError:
        return None
