"""The provider port: what the pipeline needs from any speech service.

Every provider is a ``Provider``; what it can do beyond that is a capability checked with
``isinstance``: ``TaskProvider`` (recordings as tasks, asked about afterwards), with
``SearchesTasks``, ``CallsBack`` or ``Pushes``; or ``StreamingProvider`` (the worker streams the
audio itself). Adapters live in ``providers/<name>/`` and import their SDKs lazily, so a
function pays only for the provider it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, Field

from bucketscribe.domain.job import JobError, StreamMetrics
from bucketscribe.domain.media_routing import MediaRequirements
from bucketscribe.domain.profile import Profile
from bucketscribe.domain.transcript import Transcript
from bucketscribe.ports.media_tools import SpeechPcm


def file_key(url: str) -> str:
    """What identifies a media URL across a round trip: host, decoded path and the object version
    (the rest of the query holds signatures, and a service may re-encode the path)."""
    parts = urlsplit(url)
    version = dict(parse_qsl(parts.query)).get("versionId")
    return f"{parts.netloc}{unquote(parts.path)}" + (f"?versionId={version}" if version else "")


class SubmitItem(BaseModel):
    job_id: str
    media_url: str
    callback_url: str | None = None


class SubmitReceipt(BaseModel):
    job_id: str
    task_id: str | None = None
    error: JobError | None = None


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    DONE = "DONE"
    FAILED = "FAILED"
    NOT_FOUND = "NOT_FOUND"


class FileOutcome(BaseModel):
    """The result for one file of a task (one per file URL the task was given)."""

    status: TaskStatus
    file_url: str | None = None
    # Where a finished file's result can be downloaded when it is not inline;
    # ``Provider.load_result`` fills ``transcript`` and ``raw`` from it.
    result_url: str | None = None
    transcript: Transcript | None = None
    raw: dict[str, Any] | None = None
    # The speech time the provider says it heard, per channel (keyed as the transcript labels
    # segments: None for one channel), where its result says: coverage is checked against it.
    reported_speech_ms: dict[int | None, int] | None = None
    error: JobError | None = None


class TaskResult(BaseModel):
    task_id: str
    status: TaskStatus
    files: list[FileOutcome] = Field(default_factory=list)
    error: JobError | None = None
    # When the provider created the task, where it says (binds a task found late to an attempt).
    created_at: datetime | None = None
    # How long the audio the provider recognised lasts, where it says (the result's own audio length): a
    # task found late is bound only to the upload whose audio is that long.
    audio_ms: int | None = None

    def outcome_for(self, provider_file: str | None) -> FileOutcome:
        """This job's file of the task: matched by URL path, or the only file there is."""
        if provider_file is not None:
            for outcome in self.files:
                if outcome.file_url and file_key(outcome.file_url) == provider_file:
                    return outcome
        if len(self.files) == 1:
            # One file, one job: it is this job's whatever form the service echoed its URL in.
            return self.files[0]
        if self.status in (TaskStatus.PENDING, TaskStatus.NOT_FOUND) or not self.files:
            return FileOutcome(status=self.status, error=self.error)
        return FileOutcome(
            status=TaskStatus.FAILED,
            error=JobError(
                code="FILE_NOT_IN_TASK", message="the provider's task result does not list this file"
            ),
        )


class ProviderError(Exception):
    """A whole request to the provider failed; ``retryable`` says whether to try again later.

    ``maybe_done`` marks an *ambiguous* failure: the request may have reached the provider and
    taken effect (a timeout after sending, a dropped connection, a 5xx), so a submission that
    failed this way must not simply be sent again. ``over_capacity`` marks a certain refusal
    because the account's concurrency or rate quota is full: the upload waits for capacity (it is
    not the file's fault, and not counted against its attempts).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool,
        maybe_done: bool = False,
        over_capacity: bool = False,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.maybe_done = maybe_done
        self.over_capacity = over_capacity and retryable and not maybe_done

    def as_job_error(self) -> JobError:
        return JobError(code=self.code, message=self.message, retryable=self.retryable)


class PushRejected(ValueError):
    """The request is not a task-finished push of this provider."""


class Push(BaseModel):
    """What a provider's task-finished push says (only a hint: the task is fetched again)."""

    task_id: str
    sent_at: datetime | None = None


class TaskSearch(BaseModel):
    """What the provider's own records say about tasks created in a time window."""

    # file key → task id, for each of the asked-for files found in a task of the window
    found: dict[str, str] = Field(default_factory=dict)
    # tasks of the window that do not show their files yet (still queued or running)
    undecided: int = 0


class Provider(Protocol):
    """What every speech service is to the pipeline: a name, what one job of it takes, and which
    model a profile's options choose. What else it can do is a capability of its own, below."""

    name: str

    def model_name(self, profile: Profile) -> str | None:
        """The model (or property) ``profile``'s options choose, as the job records it."""
        ...

    def media_requirements(self, profile: Profile) -> MediaRequirements:
        """What one job of this service takes under ``profile``: the containers and codecs it
        decodes, its size and length limits, the channels and sample rate the model needs."""
        ...


@runtime_checkable
class TaskProvider(Provider, Protocol):
    """A service that takes recordings as tasks and is asked about them afterwards."""

    # Files one task may carry (1 to 100): a callback or push names the task.
    max_files_per_task: int

    def submit(self, items: Sequence[SubmitItem], profile: Profile) -> list[SubmitReceipt]:
        """Start recognition of ``items``; one receipt per item, in order.

        Raises ``ProviderError`` when the whole request failed.
        """
        ...

    def fetch(self, task_id: str) -> TaskResult:
        """Ask the provider, over its authenticated API, where a task stands."""
        ...

    def load_result(self, outcome: FileOutcome) -> FileOutcome:
        """A finished file's transcript, downloaded if the task status only pointed at it."""
        ...


@runtime_checkable
class SearchesTasks(Protocol):
    """A provider that lists its tasks by creation time: a task whose submit answer
    was lost is found in its listing."""

    def search_tasks(self, start: datetime, end: datetime, files: set[str]) -> TaskSearch:
        """Tasks created between ``start`` and ``end`` that carry any of ``files`` (file keys)."""
        ...


@runtime_checkable
class CallsBack(Protocol):
    """A provider that calls a URL given with each submission when its job ends: each
    attempt gets its own signed URL, so the callback proves which attempt it belongs to."""

    def claimed_task(self, body: str) -> str | None:
        """The task a callback's body names (only ever asked about, never trusted)."""
        ...


@runtime_checkable
class Pushes(Protocol):
    """A provider whose task-finished events are pushed to us (through an event bus)."""

    def parse_push(self, body: str, header: Callable[[str], str | None]) -> Push:
        """The task a pushed task-finished event names and when it was sent (the transport's
        signing time where ``header`` carries one); ``PushRejected`` if it is not one."""
        ...


class StreamedRecording(BaseModel):
    """A recording streamed to a real-time service to its end: the transcript of its final
    sentences, the service's task id(s) and how the stream went."""

    transcript: Transcript
    task_id: str
    metrics: StreamMetrics


# A stream cut by the worker at the time it was given (it would have outlived the run): paid for,
# and retried like a stream that broke, within the bound on interrupted streams.
STREAM_CUT_AT_DEADLINE = "STREAM_CUT_AT_DEADLINE"


@runtime_checkable
class StreamingProvider(Provider, Protocol):
    """A real-time service: the worker streams the audio itself and gets the transcript at the
    end of the stream. There is no task to look up afterwards."""

    def splits_channels(self, profile: Profile) -> bool:
        """Whether ``profile`` streams each channel of a recording on its own (a call)."""
        ...

    def longer_uploads_to(self, profile: Profile) -> str | None:
        """The file-transcription provider that takes uploads too long to stream, where the
        profile says so; ``None``: they are refused for the mode."""
        ...

    def stream(self, speech: SpeechPcm, profile: Profile, *, within: timedelta) -> StreamedRecording:
        """Stream ``speech`` with the profile's real-time options, ending within ``within``;
        ``ProviderError`` with the service's code when the stream fails (``retryable`` unless the
        service refused the parameters or the key), retryable ``STREAM_CUT_AT_DEADLINE`` when it
        was cut at ``within``."""
        ...
