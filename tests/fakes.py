"""In-memory fakes of the ports, for unit tests of the use cases (no I/O)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from bucketscribe.clouds.aws.events import object_refs_from_message_body
from bucketscribe.domain.callback_tokens import CallbackClaim
from bucketscribe.domain.job import Job, JobError, JobState, StreamMetrics
from bucketscribe.domain.job_events import JobEvent
from bucketscribe.domain.media_routing import AudioTarget, MediaProbe, MediaRequirements
from bucketscribe.domain.media_sniff import SNIFF_BYTES, MediaKind, sniff
from bucketscribe.domain.notification import Notification
from bucketscribe.domain.profile import Profile
from bucketscribe.domain.transcript import Segment, Transcript, TranslatedSegment, Translation
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.media.transcode import decode_pcm16
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.ports.dead_letters import DeadLetter
from bucketscribe.ports.event_bus import EventNotPublished, event_document
from bucketscribe.ports.job_store import refuse_draft
from bucketscribe.ports.media_tools import DecoderMissing, MediaError, SpeechPcm, StoredAudio
from bucketscribe.ports.provider import (
    FileOutcome,
    ProviderError,
    StreamedRecording,
    SubmitItem,
    SubmitReceipt,
    TaskResult,
    TaskSearch,
    TaskStatus,
    file_key,
)
from bucketscribe.ports.storage import ObjectInfo
from bucketscribe.ports.webhooks import WebhookNotDelivered
from bucketscribe.providers import registry
from bucketscribe.providers.dashscope.options import RealtimeOptions
from bucketscribe.providers.dashscope.realtime import DashScopeRealtimeProvider

T = TypeVar("T")


class InMemoryStorage:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.puts: list[tuple[str, str]] = []
        self.deletes: list[tuple[str, str]] = []

    def add(self, bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.objects[(bucket, key)] = (body, content_type)

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        if (bucket, key) not in self.objects:
            return None
        body, content_type = self.objects[(bucket, key)]
        return ObjectInfo(
            size=len(body),
            etag=hashlib.md5(body, usedforsecurity=False).hexdigest(),
            content_type=content_type,
        )

    def read_head(self, bucket: str, key: str, length: int) -> bytes:
        return self.objects[(bucket, key)][0][:length]

    def get(self, bucket: str, key: str) -> bytes:
        return self.objects[(bucket, key)][0]

    def put(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        self.objects[(bucket, key)] = (body, content_type)
        self.puts.append((bucket, key))

    def download(self, bucket: str, key: str, dest: Path) -> None:
        dest.write_bytes(self.objects[(bucket, key)][0])

    def upload(self, bucket: str, key: str, src: Path, *, content_type: str) -> None:
        self.put(bucket, key, src.read_bytes(), content_type=content_type)

    def delete(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)
        self.deletes.append((bucket, key))

    def presign_get(self, bucket: str, key: str, *, expires_s: int, version_id: str | None = None) -> str:
        version = f"&versionId={version_id}" if version_id else ""
        return f"https://storage.invalid/{bucket}/{key}?expires={expires_s}{version}"

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for (_, k) in self.objects if k.startswith(prefix))


class InMemoryJobStore:
    """The job store's contract in memory: writes only over the version they were derived from."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.tasks: dict[tuple[str, str], dict[str, str]] = {}
        self.leases: dict[str, tuple[str, datetime]] = {}
        self.saves = 0
        # Conditional writes are atomic in every real store; the pipeline writes side by side.
        self._writing = threading.RLock()

    def take_lease(self, name: str, *, owner: str, until: datetime, now: datetime) -> bool:
        with self._writing:
            held = self.leases.get(name)
            if held is not None and held[1] > now:
                return False
            self.leases[name] = (owner, until)
            return True

    def end_lease(self, name: str, *, owner: str) -> None:
        held = self.leases.get(name)
        if held is not None and held[0] == owner:
            del self.leases[name]

    def create(self, job: Job) -> bool:
        refuse_draft(job)
        with self._writing:
            if job.id in self.jobs:
                return False
            self.jobs[job.id] = job
            return True

    def get(self, job_id: str | None) -> Job | None:
        # None: a test reading back the job of a result that has none (and must then fail).
        return None if job_id is None else self.jobs.get(job_id)

    def save(self, job: Job) -> bool:
        with self._writing:
            current = self.jobs.get(job.id)
            if current is None or current.version != job.version - 1:
                return False
            self.jobs[job.id] = job
            self.saves += 1
            return True

    def bind_task(
        self, provider: str, task_id: str, files: dict[str, str], *, exclusive: bool = False
    ) -> dict[str, str]:
        with self._writing:
            stored = self.tasks.get((provider, task_id), {})
            if stored and exclusive and not files.keys() & stored.keys():
                return dict(stored)
            merged = {**files, **stored}
            self.tasks[(provider, task_id)] = merged
            return dict(merged)

    def task_files(self, provider: str, task_id: str) -> dict[str, str]:
        return dict(self.tasks.get((provider, task_id), {}))

    def due(self, now: datetime, *, limit: int) -> list[Job]:
        open_jobs = [
            j
            for j in self.jobs.values()
            if not j.state.is_final and j.next_check_at and j.next_check_at <= now
        ]
        return sorted(open_jobs, key=lambda j: j.next_check_at or now)[:limit]

    def deliveries_due(self, now: datetime, *, limit: int) -> list[Job]:
        due = [
            (at, j)
            for j in self.jobs.values()
            if j.state.is_final and (at := j.next_delivery_at) is not None and at <= now
        ]
        return [j for _, j in sorted(due, key=lambda pair: pair[0])][:limit]

    def for_source(self, bucket: str, key: str, *, limit: int = 10) -> list[Job]:
        mine = [j for j in self.jobs.values() if j.source.bucket == bucket and j.source.key == key]
        return sorted(mine, key=lambda j: j.created_at, reverse=True)[:limit]

    def listing(
        self, *, state: JobState | None, since: datetime | None, key_prefix: str | None, limit: int
    ) -> list[Job]:
        chosen = [
            j
            for j in self.jobs.values()
            if (state is None or j.state is state)
            and (since is None or j.updated_at >= since)
            and (key_prefix is None or f"{j.source.bucket}/{j.source.key}".startswith(key_prefix))
        ]
        return sorted(chosen, key=lambda j: j.updated_at, reverse=True)[:limit]


class FakeProvider:
    """A ``TaskProvider`` that records submissions; results are set by the test through ``finish``
    / ``fail`` / ``expire``.

    ``lose_answer`` makes the next submissions create their task and then fail with that error
    (an answer lost on the way back). Its capabilities are switches a test may flip, as the
    pipeline sees them (``isinstance`` against the capability ports): ``can_search_tasks`` makes it
    list tasks by creation time the way DashScope does (a task's files show only once it has
    finished); ``accepts_callback_url`` makes it call back per attempt, as SIS does.
    """

    name = "sis"

    def __init__(self, max_files_per_task: int = 1, *, can_search_tasks: bool = False) -> None:
        self.max_files_per_task = max_files_per_task
        self.can_search_tasks = can_search_tasks
        self.accepts_callback_url = True
        # What it decodes and how much one job holds (tests change these).
        self.decodes: dict[str, frozenset[str] | None] | None = {
            "wav": frozenset({"pcm_s16le"}),
            "mp3": frozenset({"mp3"}),
            "mp4": frozenset({"aac"}),
            "ogg": frozenset({"opus"}),
        }
        self.takes_video = False
        self.max_bytes = 2_000_000
        self.max_duration_ms = 5 * 3600 * 1000
        self.sample_rate: int | None = None
        self.submissions: list[tuple[list[SubmitItem], Profile]] = []
        self.results: dict[str, TaskResult] = {}
        self.fetches: list[str] = []
        self.searches: list[tuple[datetime, datetime, set[str]]] = []
        self.submit_error: ProviderError | None = None
        self.lose_answer: ProviderError | None = None
        # An account quota: tasks pending at once beyond it are turned away (SIS.0312).
        self.capacity: int | None = None
        self.most_in_flight = 0
        self.turned_away = 0
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._counter = 0
        self._submitting = threading.Lock()

    def model_name(self, profile: Profile) -> str:
        return registry.plugin(self.name).model_name(profile)

    def media_requirements(self, profile: Profile) -> MediaRequirements:
        return MediaRequirements(
            provider=self.name,
            profile=profile.name,
            decodes=self.decodes,
            takes_video=self.takes_video,
            max_bytes=self.max_bytes,
            max_duration_ms=self.max_duration_ms,
            max_channels=2,
            sample_rate=self.sample_rate,
            channels_needed=registry.plugin(profile.provider).channels(profile)[0],
            channels_wanted=registry.plugin(profile.provider).channels(profile)[1],
        )

    def submit(self, items: Sequence[SubmitItem], profile: Profile) -> list[SubmitReceipt]:
        """One task for all ``items`` (at most ``max_files_per_task``), like DashScope; SIS sends one.
        Atomic, as the service is: the pipeline submits one-file tasks side by side."""
        with self._submitting:
            return self._submit(items, profile)

    def _submit(self, items: Sequence[SubmitItem], profile: Profile) -> list[SubmitReceipt]:
        if self.submit_error is not None:
            raise self.submit_error
        if self.capacity is not None and self.in_flight() >= self.capacity:
            self.turned_away += 1
            raise ProviderError("SIS.0312", "too many concurrent jobs", retryable=True, over_capacity=True)
        self.submissions.append((list(items), profile))
        self._counter += 1
        task_id = f"task-{self._counter}"
        self.results[task_id] = TaskResult(
            task_id=task_id,
            status=TaskStatus.PENDING,
            files=[FileOutcome(status=TaskStatus.PENDING, file_url=item.media_url) for item in items],
            created_at=self.clock(),
        )
        self.most_in_flight = max(self.most_in_flight, self.in_flight())
        if self.lose_answer is not None:
            raise self.lose_answer
        return [SubmitReceipt(job_id=item.job_id, task_id=task_id) for item in items]

    def in_flight(self) -> int:
        return sum(result.status is TaskStatus.PENDING for result in self.results.values())

    def tasks_for(self, job_id: str | None) -> list[str]:
        """The tasks created for a job (counted at the provider, as a bill would)."""
        return [
            f"task-{number}"
            for number, (items, _) in enumerate(self.submissions, start=1)
            if any(item.job_id == job_id for item in items)
        ]

    def _replace_files(self, task_id: str, status: TaskStatus, **outcome: Any) -> None:
        task = self.results[task_id]
        files = [FileOutcome(status=status, file_url=f.file_url, **outcome) for f in task.files]
        self.results[task_id] = task.model_copy(update={"status": status, "files": files})

    # A test names the task of a job it has just submitted (``job.provider_task_id``): None there
    # is that test's failure, reported as such.
    def finish(self, task_id: str | None, transcript: Transcript, raw: dict[str, Any] | None = None) -> None:
        """The task ends with ``transcript``; like SIS, its result says how long the audio was."""
        assert task_id is not None, "the job has no provider task"
        self._replace_files(
            task_id, TaskStatus.DONE, transcript=transcript, raw=raw or {"status": "FINISHED"}
        )
        self.results[task_id] = self.results[task_id].model_copy(update={"audio_ms": transcript.duration_ms})

    def fail(self, task_id: str | None, error: JobError) -> None:
        assert task_id is not None, "the job has no provider task"
        self._replace_files(task_id, TaskStatus.FAILED, error=error)

    def expire(self, task_id: str | None) -> None:
        assert task_id is not None, "the job has no provider task"
        self.results[task_id] = TaskResult(task_id=task_id, status=TaskStatus.NOT_FOUND)

    def load_result(self, outcome: FileOutcome) -> FileOutcome:
        return outcome

    def fetch(self, task_id: str) -> TaskResult:
        self.fetches.append(task_id)
        return self.results.get(task_id) or TaskResult(task_id=task_id, status=TaskStatus.NOT_FOUND)

    def __setattr__(self, name: str, value: Any) -> None:
        # A capability is a method the pipeline looks for (``isinstance`` against a runtime-checkable
        # protocol looks at the class): switching one on or off swaps in the class that has it.
        super().__setattr__(name, value)
        if name in ("can_search_tasks", "accepts_callback_url") and hasattr(self, "accepts_callback_url"):
            searching, calling = getattr(self, "can_search_tasks", False), self.accepts_callback_url
            self.__class__ = _CAPABLE[(searching, calling)]

    def _claimed_task(self, body: str) -> str | None:
        """The task a SIS-shaped callback body names: a non-empty string, or none at all."""
        try:
            data = json.loads(body)
        except ValueError:
            return None
        claimed = data.get("job_id") if isinstance(data, dict) else None
        return claimed if isinstance(claimed, str) and claimed else None

    def _search_tasks(self, start: datetime, end: datetime, files: set[str]) -> TaskSearch:
        self.searches.append((start, end, set(files)))
        search = TaskSearch()
        for task in self.results.values():
            if task.created_at is None or not start <= task.created_at <= end:
                continue
            if task.status is TaskStatus.PENDING:
                search.undecided += 1
                continue
            for outcome in task.files:
                if outcome.file_url and file_key(outcome.file_url) in files:
                    search.found[file_key(outcome.file_url)] = task.task_id
        return search


class _SearchingFake(FakeProvider):
    def search_tasks(self, start: datetime, end: datetime, files: set[str]) -> TaskSearch:
        return self._search_tasks(start, end, files)


class _CallingBackFake(FakeProvider):
    def claimed_task(self, body: str) -> str | None:
        return self._claimed_task(body)


class _SearchingCallingBackFake(_SearchingFake, _CallingBackFake):
    pass


_CAPABLE: dict[tuple[bool, bool], type[FakeProvider]] = {
    (False, False): FakeProvider,
    (True, False): _SearchingFake,
    (False, True): _CallingBackFake,
    (True, True): _SearchingCallingBackFake,
}


def claim_from_callback_url(url: str | None) -> tuple[str, CallbackClaim | None]:
    """The job id and claim a provider presents when it calls ``url`` back (as the route reads them)."""
    assert url is not None, "the submission carried no callback URL"
    parts = urlsplit(url)
    provider, job_id = (unquote(part) for part in parts.path.rsplit("/", 2)[-2:])
    return job_id, CallbackClaim.from_query(provider, job_id, dict(parse_qsl(parts.query)))


class InMemoryEventBus:
    """The event-bus port in memory: the documents it took, in order. ``refuse`` makes that many of
    the next publishes fail as a bus that did not take them."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []
        self.refuse = 0

    def publish(self, event: JobEvent) -> None:
        if self.refuse:
            self.refuse -= 1
            raise EventNotPublished("the bus is throttling")
        self.documents.append(event_document(event))


class FakeWebhooks:
    """The webhook port without a network: every send is recorded (url, secret name, event id,
    body); ``failures`` are raised by the next sends, in order (a receiver answering 500, a
    timeout, a refused address), and ``on_send`` runs inside each send (a test looks at the world
    as a receiver would, at the moment it is called)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str | None, str, bytes]] = []
        self.failures: list[Exception] = []
        self.on_send: Callable[[JobEvent], None] = lambda event: None

    def send(self, url: str, secret_name: str | None, event: JobEvent) -> None:
        self.on_send(event)
        self.sent.append((url, secret_name, event.id, event.body()))
        if self.failures:
            raise self.failures.pop(0)

    def fail_next(self, times: int, why: str = "the receiver answered HTTP 500") -> None:
        self.failures.extend(WebhookNotDelivered(why) for _ in range(times))


class InMemoryDeadLetters:
    """A dead-letter queue: messages in, settled messages deleted."""

    def __init__(self, bodies: Sequence[str] = ()) -> None:
        self.letters = [
            DeadLetter(message_id=f"m{i}", body=body, receipt=f"r{i}") for i, body in enumerate(bodies)
        ]
        self.deleted: list[str] = []

    def receive(self, max_messages: int) -> list[DeadLetter]:
        waiting = [letter for letter in self.letters if letter.message_id not in self.deleted]
        return waiting[:max_messages]

    def read(self, letter: DeadLetter) -> Notification:
        return object_refs_from_message_body(letter.body)

    def delete(self, letter: DeadLetter) -> None:
        self.deleted.append(letter.message_id)


class FakeMediaTools:
    """The media port over the in-memory bucket: each upload's probe is what the test says it is
    (else what its header says: a WAV's, or ``MediaError`` for bytes that are no media), quiet
    places are listed by the test, and what is written is a small stand-in of the right size
    class (the audio itself is PyAV's business: ``tests/contracts/test_media_tools.py`` holds the
    fake and ``BucketMedia`` to the same contract)."""

    converts = True

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage
        self.probes: dict[str, MediaProbe] = {}
        self.quiet_ms: list[int] = []
        self.fail: str | None = None
        self.writes: list[tuple[str, str, AudioTarget, int, int | None]] = []
        self.searches: list[tuple[int, int]] = []
        self.probed: list[str] = []

    def probe(self, source: ObjectRef) -> MediaProbe:
        self.probed.append(source.key)
        if self.fail:
            raise MediaError(self.fail)
        return self._probe_of(source).model_copy(update={"size_bytes": source.size or 0})

    def _probe_of(self, source: ObjectRef) -> MediaProbe:
        """What the test said the upload holds; else what its header says, which for a plain WAV
        is all PyAV would find. Bytes with no media header are no media (``MediaError``, as PyAV
        raises); what a header leaves open, the test must say."""
        scripted = self.probes.get(source.key)
        if scripted is not None:
            return scripted
        body = self.storage.get(source.bucket, source.key)
        sniffed = sniff(body[:SNIFF_BYTES], total_size=len(body))
        if sniffed is None:
            raise MediaError("not a media file that can be decoded")
        found = MediaProbe.from_header(sniffed, size=len(body), kind=MediaKind.AUDIO)
        if not found.complete:
            raise LookupError(f"the fake reads only what a header says: set probes[{source.key!r}]")
        return found.model_copy(update={"read_by": "decoder"})

    def quietest_ms(self, source: ObjectRef, start_ms: int, end_ms: int) -> int:
        self.searches.append((start_ms, end_ms))
        quiet = [at for at in self.quiet_ms if start_ms <= at <= end_ms]
        return max(quiet) if quiet else end_ms

    def speech(self, source: ObjectRef, key: str, *, split_channels: bool) -> SpeechPcm:
        """The stored bytes decoded by the real decoder (its standard-library path for a 16 kHz
        WAV: no PyAV needed); ``MediaError`` when ``fail`` says so."""
        if self.fail:
            raise MediaError(self.fail)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "audio"
            path.write_bytes(self.storage.get(source.bucket, key))
            try:
                return decode_pcm16(path, split_channels=split_channels)
            except ImportError as missing:
                raise DecoderMissing(str(missing)) from missing

    def write(
        self,
        source: ObjectRef,
        dest_key: str,
        target: AudioTarget,
        *,
        start_ms: int = 0,
        end_ms: int | None = None,
    ) -> StoredAudio:
        if self.fail:
            raise MediaError(self.fail)
        self.writes.append((source.key, dest_key, target, start_ms, end_ms))
        end = end_ms if end_ms is not None else self._probe_of(source).duration_ms or 0
        per_ms = target.bytes_per_ms() or 1.0
        size = int((end - start_ms) * per_ms)
        body = f"{target.extension}:{source.key}:{start_ms}-{end}".encode()
        self.storage.put(source.bucket, dest_key, body, content_type=target.content_type)
        return StoredAudio(key=dest_key, output_bytes=size, start_ms=start_ms, end_ms=end)


class DiskStorage:
    """The storage port over a folder, for recordings too long to hold in memory; a presigned URL
    is the object's path, which PyAV reads like any URL (with seeks instead of range requests).

    As in a bucket, an object's ETag is the MD5 of its bytes (``outputs.put_once`` relies on it)
    and its head reports the content type it was written with (None for a file a test wrote into
    the folder itself). The MD5 is taken as an object is written, and of a file written behind the
    storage's back once per revision (size and modification time): a recording of hours is headed
    several times by one run.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._content_types: dict[Path, str] = {}
        self._md5s: dict[Path, tuple[tuple[int, int], str]] = {}

    def _path(self, bucket: str, key: str) -> Path:
        return self.root / bucket / key

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        path = self._path(bucket, key)
        if not path.is_file():
            return None
        stat = path.stat()
        return ObjectInfo(
            size=stat.st_size, etag=self._md5(path, stat), content_type=self._content_types.get(path)
        )

    def _md5(self, path: Path, stat: os.stat_result) -> str:
        known = self._md5s.get(path)
        if known is None or known[0] != (stat.st_size, stat.st_mtime_ns):
            known = self._written(path)
        return known[1]

    def _written(self, path: Path) -> tuple[tuple[int, int], str]:
        """The MD5 of the file as it is now, remembered with its revision."""
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as body:
            while chunk := body.read(1024 * 1024):
                digest.update(chunk)
        stat = path.stat()
        known = self._md5s[path] = ((stat.st_size, stat.st_mtime_ns), digest.hexdigest())
        return known

    def read_head(self, bucket: str, key: str, length: int) -> bytes:
        with self._path(bucket, key).open("rb") as body:
            return body.read(length)

    def get(self, bucket: str, key: str) -> bytes:
        return self._path(bucket, key).read_bytes()

    def put(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        self._content_types[path] = content_type
        self._written(path)  # two puts within one tick of the file clock may have the same revision

    def download(self, bucket: str, key: str, dest: Path) -> None:
        shutil.copyfile(self._path(bucket, key), dest)

    def upload(self, bucket: str, key: str, src: Path, *, content_type: str) -> None:
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, path)
        self._content_types[path] = content_type
        self._written(path)

    def delete(self, bucket: str, key: str) -> None:
        path = self._path(bucket, key)
        path.unlink(missing_ok=True)
        self._content_types.pop(path, None)
        self._md5s.pop(path, None)

    def presign_get(self, bucket: str, key: str, *, expires_s: int, version_id: str | None = None) -> str:
        return str(self._path(bucket, key))

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        base = self.root / bucket
        found = (str(path.relative_to(base)) for path in base.rglob("*") if path.is_file())
        return sorted(key for key in found if key.startswith(prefix))


class WorkerDied(BaseException):
    """A worker stopping dead (killed at its timeout, out of memory): nothing of it runs on."""


class FakeStreamingProvider:
    """``dashscope-realtime`` for the use cases: each ``stream`` is one (paid) stream of the upload.

    ``fail_with`` makes the next stream fail with that error; ``die`` makes it stop the worker
    mid-stream (``WorkerDied``), as often as it is set to.
    """

    name = "dashscope-realtime"

    def __init__(self) -> None:
        self.streams: list[tuple[SpeechPcm, Profile]] = []
        self.given: list[timedelta] = []  # the time each stream was given to end within
        self.fail_with: ProviderError | None = None
        self.die = 0

    def stream(self, speech: SpeechPcm, profile: Profile, *, within: timedelta) -> StreamedRecording:
        self.streams.append((speech, profile))
        self.given.append(within)
        if self.die:
            self.die -= 1
            raise WorkerDied
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error
        number = len(self.streams)
        segments = [Segment(start_ms=0, end_ms=900, text=f"stream {number} heard this.")]
        translations = []
        options = RealtimeOptions.of(profile)
        if options.translate:
            translations = [
                Translation(
                    language=options.translate,
                    segments=[TranslatedSegment(start_ms=0, end_ms=900, text=f"translation {number}.")],
                )
            ]
        return StreamedRecording(
            transcript=Transcript(
                provider="dashscope",
                model=options.model,
                duration_ms=speech.duration_ms,
                segments=segments,
                translations=translations,
            ),
            task_id=f"stream-{number}",
            metrics=StreamMetrics(
                first_package_ms=400 + number,
                last_package_ms=1100,
                audio_ms=speech.duration_ms,
                elapsed_ms=900,
            ),
        )

    def model_name(self, profile: Profile) -> str:
        return RealtimeOptions.of(profile).model

    def splits_channels(self, profile: Profile) -> bool:
        return RealtimeOptions.of(profile).channels == "split"

    def longer_uploads_to(self, profile: Profile) -> str | None:
        return "dashscope" if RealtimeOptions.of(profile).longer_uploads == "batch" else None

    def media_requirements(self, profile: Profile) -> MediaRequirements:
        return DashScopeRealtimeProvider.media_requirements(self, profile)  # type: ignore[arg-type]


class SettableClock:
    """The pipeline's clock in unit tests: stands at ``now`` until a test moves it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakePorts(PipelinePorts):
    """The ports with the in-memory fakes, typed as such so that a test may seed, inspect and move
    them (``ports.storage.add``, ``ports.jobs.jobs``, ``ports.clock.now += ...``)."""

    storage: InMemoryStorage
    jobs: InMemoryJobStore
    clock: SettableClock = field(default_factory=SettableClock)


def known(value: T | None, what: str = "the value") -> T:
    """``value``, which the test has just made and so must exist (a None fails the test here)."""
    assert value is not None, f"{what} is missing"
    return value
