"""What callers send: the file-transcription submit body, the task-list query and the parameters of
a real-time ``run-task``, validated as DashScope validates them (the SDK forwards any extra kwarg)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bucketscribe_local.dashscope_server.wire_formats import BEIJING, TaskStatus

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
# What each model documents it can hear (gummy: the source languages of its translation pairs;
# paraformer-realtime-v2: its language_hints).
GUMMY_SOURCE_LANGUAGES = frozenset(
    {"zh", "en", "ja", "ko", "yue", "fr", "de", "es", "ru", "it", "pt", "id", "ar", "hi", "da", "ur", "tr"}
    | {"nl", "ms", "vi"}
)
PARAFORMER_V2_LANGUAGES = frozenset({"zh", "en", "ja", "yue", "ko", "de", "fr", "ru"})
# VAD: how long a pause ends a sentence (gummy max_end_silence, paraformer max_sentence_silence).
END_SILENCE_RANGE_MS = (200, 6000)
DEFAULT_END_SILENCE_MS = {"gummy": 700, "paraformer": 800}

LIST_TIME_FORMAT = "%Y%m%d%H%M%S"  # BaseAsyncApi.list: start_time/end_time "20230420000000"
MAX_LIST_PAGE_SIZE = 100


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


class TaskListQuery(BaseModel):
    """``GET /api/v1/tasks`` parameters (``BaseAsyncApi.list`` sends them as the query string)."""

    model_config = ConfigDict(extra="ignore")

    page_no: int = Field(default=1, ge=1)
    page_size: int = Field(default=10, ge=1, le=MAX_LIST_PAGE_SIZE)
    status: TaskStatus | None = None
    model_name: str | None = None
    api_key_id: str | None = None
    region: str | None = None
    # Beijing time, as the SDK documents ("20230420000000"); held as epoch seconds.
    start_time: float | None = None
    end_time: float | None = None

    @field_validator("start_time", "end_time", mode="before")
    @classmethod
    def _beijing_time(cls, value: object) -> float | None:
        if value is None:
            return None
        if not isinstance(value, str) or len(value) != 14 or not value.isdigit():
            raise ValueError("expected a time like 20230420000000 (Beijing time)")
        return datetime.strptime(value, LIST_TIME_FORMAT).replace(tzinfo=BEIJING).timestamp()


class RealtimeParameters(BaseModel):
    model_config = ConfigDict(extra="allow")

    sample_rate: int = Field(default=16000, gt=0)
    format: str = "pcm"
    source_language: str | None = None
    language_hints: list[str] | None = None
    transcription_enabled: bool = True
    translation_enabled: bool = False
    translation_target_languages: list[str] | None = None
    max_end_silence: int | None = None  # gummy
    max_sentence_silence: int | None = None  # paraformer realtime

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        value = value.lower()
        if value not in REALTIME_FORMATS:
            raise ValueError(f"unsupported audio format {value!r}; use one of {sorted(REALTIME_FORMATS)}")
        return value


def single_language_hint(hints: Sequence[str] | None) -> str | None:
    """One hint is a language to force; several (the default zh+en) mean "detect"."""
    if hints and len(hints) == 1 and hints[0] not in ("auto", ""):
        return hints[0]
    return None
