"""In-memory fakes of the ports, for unit tests of the use cases (no I/O)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bucketscribe.model import Job, JobError, JobState, Transcript
from bucketscribe.profiles import Profile
from bucketscribe.providers.base import (
    FileOutcome,
    ProviderError,
    SubmitItem,
    SubmitReceipt,
    TaskResult,
    TaskStatus,
)
from bucketscribe.storage.base import ObjectInfo


class InMemoryStorage:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.puts: list[tuple[str, str]] = []

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

    def presign_get(self, bucket: str, key: str, *, expires_s: int) -> str:
        return f"https://storage.invalid/{bucket}/{key}?expires={expires_s}"

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for (_, k) in self.objects if k.startswith(prefix))


class InMemoryJobStore:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.tasks: dict[tuple[str, str], dict[str, str]] = {}

    def record_task(self, provider: str, task_id: str, files: dict[str, str]) -> None:
        self.tasks[(provider, task_id)] = dict(files)

    def task_files(self, provider: str, task_id: str) -> dict[str, str]:
        return dict(self.tasks.get((provider, task_id), {}))

    def create(self, job: Job) -> bool:
        if job.id in self.jobs:
            return False
        self.jobs[job.id] = job
        return True

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def claim(self, job: Job, *, now: datetime) -> bool:
        current = self.jobs.get(job.id)
        if current is None or current.state is not JobState.ACCEPTED:
            return False
        if current.claimed_until is not None and current.claimed_until >= now:
            return False
        self.jobs[job.id] = job
        return True

    def replace(self, job: Job, *, expected: Iterable[JobState]) -> bool:
        current = self.jobs.get(job.id)
        if current is None or current.state not in set(expected):
            return False
        self.jobs[job.id] = job
        return True

    def due(self, now: datetime, *, limit: int) -> list[Job]:
        open_jobs = [
            j
            for j in self.jobs.values()
            if not j.state.is_final and j.next_check_at and j.next_check_at <= now
        ]
        return sorted(open_jobs, key=lambda j: j.next_check_at or now)[:limit]


class FakeProvider:
    """Records submissions; results are set by the test through ``finish`` / ``fail``."""

    name = "sis"
    accepts_callback_url = True
    accepted_containers: frozenset[str] | None = frozenset({"wav", "mp3", "mp4", "ogg-opus"})

    def __init__(self, max_files_per_task: int = 1) -> None:
        self.max_files_per_task = max_files_per_task
        self.submissions: list[tuple[list[SubmitItem], Profile]] = []
        self.results: dict[str, TaskResult] = {}
        self.fetches: list[str] = []
        self.submit_error: ProviderError | None = None
        self._counter = 0

    def submit(self, items: Sequence[SubmitItem], profile: Profile) -> list[SubmitReceipt]:
        """One task for all ``items`` (at most ``max_files_per_task``), like DashScope; SIS sends one."""
        if self.submit_error is not None:
            raise self.submit_error
        self.submissions.append((list(items), profile))
        self._counter += 1
        task_id = f"task-{self._counter}"
        self.results[task_id] = TaskResult(
            task_id=task_id,
            status=TaskStatus.PENDING,
            files=[FileOutcome(status=TaskStatus.PENDING, file_url=item.media_url) for item in items],
        )
        return [SubmitReceipt(job_id=item.job_id, task_id=task_id) for item in items]

    def finish(self, task_id: str, transcript: Transcript, raw: dict[str, Any] | None = None) -> None:
        files = [
            FileOutcome(
                status=TaskStatus.DONE,
                file_url=f.file_url,
                transcript=transcript,
                raw=raw or {"status": "FINISHED"},
            )
            for f in self.results[task_id].files
        ]
        self.results[task_id] = TaskResult(task_id=task_id, status=TaskStatus.DONE, files=files)

    def fail(self, task_id: str, error: JobError) -> None:
        files = [
            FileOutcome(status=TaskStatus.FAILED, file_url=f.file_url, error=error)
            for f in self.results[task_id].files
        ]
        self.results[task_id] = TaskResult(task_id=task_id, status=TaskStatus.FAILED, files=files)

    def load_result(self, outcome: FileOutcome) -> FileOutcome:
        return outcome

    def fetch(self, task_id: str) -> TaskResult:
        self.fetches.append(task_id)
        return self.results.get(task_id) or TaskResult(task_id=task_id, status=TaskStatus.NOT_FOUND)
