"""The Echo adapter: a ``TaskProvider`` that ``CallsBack``. One file a task; a task is finished as
soon as it exists (the service hears a WAV's length at once), so a fetch says DONE or NOT_FOUND."""

from __future__ import annotations

import json
from collections.abc import Sequence

from bucketscribe.domain.job import JobError
from bucketscribe.domain.media_routing import MediaRequirements
from bucketscribe.domain.profile import Profile
from bucketscribe.domain.transcript import Segment, Transcript, Word
from bucketscribe.ports.provider import (
    FileOutcome,
    ProviderError,
    SubmitItem,
    SubmitReceipt,
    TaskResult,
    TaskStatus,
)
from tests.plugins.echo_provider.options import EchoOptions
from tests.plugins.echo_provider.service import EchoService, EchoTask, UnreadableAudio

MAX_BYTES = 50 * 1024**2
MAX_DURATION_MS = 3600 * 1000


def transcript_of(task: EchoTask) -> Transcript:
    """What Echo says of a recording: its words, spread evenly over the recording, then its length."""
    said = [*task.words.split(), f"{task.duration_ms / 1000:g}", "seconds"]
    step = task.duration_ms // len(said)
    words = [Word(start_ms=n * step, end_ms=(n + 1) * step, text=text) for n, text in enumerate(said)]
    return Transcript(
        provider="echo",
        model=task.model,
        duration_ms=task.duration_ms,
        segments=[Segment(start_ms=0, end_ms=words[-1].end_ms, text=" ".join(said), words=words)],
    )


class EchoProvider:
    name = "echo"
    max_files_per_task = 1

    def __init__(self, service: EchoService) -> None:
        self._service = service

    def model_name(self, profile: Profile) -> str:
        return EchoOptions.of(profile).model

    def media_requirements(self, profile: Profile) -> MediaRequirements:
        return MediaRequirements(
            provider=self.name,
            profile=profile.name,
            decodes={"wav": frozenset({"pcm_s16le"})},
            takes_video=False,
            max_bytes=MAX_BYTES,
            max_duration_ms=MAX_DURATION_MS,
            max_channels=2,
        )

    def submit(self, items: Sequence[SubmitItem], profile: Profile) -> list[SubmitReceipt]:
        options = EchoOptions.of(profile)
        receipts = []
        for item in items:
            try:
                task = self._service.transcribe(
                    item.media_url, words=options.words, model=options.model, callback_url=item.callback_url
                )
            except UnreadableAudio as exc:
                error = JobError(code="ECHO_UNREADABLE", message=str(exc), retryable=False)
                receipts.append(SubmitReceipt(job_id=item.job_id, error=error))
                continue
            except OSError as exc:  # the file could not be fetched: worth another try later
                raise ProviderError("ECHO_FETCH_FAILED", str(exc), retryable=True) from exc
            receipts.append(SubmitReceipt(job_id=item.job_id, task_id=task.task_id))
        return receipts

    def fetch(self, task_id: str) -> TaskResult:
        task = self._service.task(task_id)
        if task is None:
            error = JobError(code="ECHO_NO_SUCH_TASK", message="Echo does not know this task")
            return TaskResult(task_id=task_id, status=TaskStatus.NOT_FOUND, error=error)
        transcript = transcript_of(task)
        outcome = FileOutcome(
            status=TaskStatus.DONE,
            file_url=task.file_url,
            transcript=transcript,
            raw={"task_id": task.task_id, "text": transcript.text, "duration_ms": task.duration_ms},
        )
        return TaskResult(task_id=task_id, status=TaskStatus.DONE, files=[outcome], audio_ms=task.duration_ms)

    def load_result(self, outcome: FileOutcome) -> FileOutcome:
        return outcome  # the transcript comes with the task

    def claimed_task(self, body: str) -> str | None:
        try:
            data = json.loads(body)
        except ValueError:
            return None
        claimed = data.get("task_id") if isinstance(data, dict) else None
        return claimed if isinstance(claimed, str) and claimed else None
