"""The job store as one JSON file: every write reads the file, checks the condition the port sets
(a job created once; saved only over the version it was derived from) and writes it whole. One
process at a time (the lock is this process's), which is what a folder on one disk serves."""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from bucketscribe.domain.job import Job, JobState
from bucketscribe.ports.job_store import refuse_draft

_LOCK = threading.Lock()


class JsonFileJobStore:
    def __init__(self, path: Path) -> None:
        self._path = path

    def _read(self) -> dict[str, Any]:
        if not self._path.exists():
            return {"jobs": {}, "tasks": {}}
        data: dict[str, Any] = json.loads(self._path.read_text(encoding="utf-8"))
        return data

    def _write(self, data: dict[str, Any]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        partial = self._path.with_name(f".{self._path.name}.part")
        partial.write_text(json.dumps(data), encoding="utf-8")
        os.replace(partial, self._path)

    def _jobs(self) -> list[Job]:
        with _LOCK:
            stored = self._read()["jobs"]
        return [Job.model_validate_json(doc) for doc in stored.values()]

    def create(self, job: Job) -> bool:
        refuse_draft(job)
        with _LOCK:
            data = self._read()
            if job.id in data["jobs"]:
                return False
            data["jobs"][job.id] = job.model_dump_json()
            self._write(data)
            return True

    def get(self, job_id: str) -> Job | None:
        with _LOCK:
            doc = self._read()["jobs"].get(job_id)
        return Job.model_validate_json(doc) if doc is not None else None

    def save(self, job: Job) -> bool:
        with _LOCK:
            data = self._read()
            doc = data["jobs"].get(job.id)
            if doc is None or Job.model_validate_json(doc).version != job.version - 1:
                return False
            data["jobs"][job.id] = job.model_dump_json()
            self._write(data)
            return True

    def bind_task(
        self, provider: str, task_id: str, files: dict[str, str], *, exclusive: bool = False
    ) -> dict[str, str]:
        key = f"{provider}#{task_id}"
        with _LOCK:
            data = self._read()
            stored: dict[str, str] = data["tasks"].get(key, {})
            if stored and exclusive and not files.keys() & stored.keys():
                return dict(stored)
            merged = {**files, **stored}
            data["tasks"][key] = merged
            self._write(data)
            return dict(merged)

    def task_files(self, provider: str, task_id: str) -> dict[str, str]:
        with _LOCK:
            return dict(self._read()["tasks"].get(f"{provider}#{task_id}", {}))

    def take_lease(self, name: str, *, owner: str, until: datetime, now: datetime) -> bool:
        with _LOCK:
            data = self._read()
            leases: dict[str, list[str]] = data.setdefault("leases", {})
            held = leases.get(name)
            if held is not None and datetime.fromisoformat(held[1]) > now:
                return False
            leases[name] = [owner, until.isoformat()]
            self._write(data)
            return True

    def end_lease(self, name: str, *, owner: str) -> None:
        with _LOCK:
            data = self._read()
            leases: dict[str, list[str]] = data.setdefault("leases", {})
            if leases.get(name, [""])[0] == owner:
                del leases[name]
                self._write(data)

    def due(self, now: datetime, *, limit: int) -> list[Job]:
        due = [
            job
            for job in self._jobs()
            if not job.state.is_final and job.next_check_at is not None and job.next_check_at <= now
        ]
        return sorted(due, key=lambda job: job.next_check_at or now)[:limit]

    def deliveries_due(self, now: datetime, *, limit: int) -> list[Job]:
        due = [
            (at, job)
            for job in self._jobs()
            if job.state.is_final and (at := job.next_delivery_at) is not None and at <= now
        ]
        return [job for _, job in sorted(due, key=lambda pair: pair[0])][:limit]

    def for_source(self, bucket: str, key: str, *, limit: int = 10) -> list[Job]:
        mine = [job for job in self._jobs() if (job.source.bucket, job.source.key) == (bucket, key)]
        return sorted(mine, key=lambda job: job.created_at, reverse=True)[:limit]

    def listing(
        self, *, state: JobState | None, since: datetime | None, key_prefix: str | None, limit: int
    ) -> list[Job]:
        chosen = [
            job
            for job in self._jobs()
            if (state is None or job.state is state)
            and (since is None or job.updated_at >= since)
            and (key_prefix is None or f"{job.source.bucket}/{job.source.key}".startswith(key_prefix))
        ]
        return sorted(chosen, key=lambda job: job.updated_at, reverse=True)[:limit]
