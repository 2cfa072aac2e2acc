"""The Echo service itself, as a provider's servers are to its adapter: somewhere else, keeping its
tasks whichever function instance asks. It fetches each file from its URL (as a provider does with
a presigned URL), hears how long the WAV lasts, and owes a callback to the URL a submission gave,
which it makes when told to (``call_back``): a real service calls back on its own time."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
import uuid
import wave
from dataclasses import dataclass


class UnreadableAudio(ValueError):
    """The file is no WAV the service can hear."""


@dataclass(frozen=True)
class EchoTask:
    task_id: str
    file_url: str
    words: str
    model: str
    duration_ms: int


class EchoService:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, EchoTask] = {}
        self._callbacks_owed: list[tuple[str, str]] = []

    def transcribe(self, file_url: str, *, words: str, model: str, callback_url: str | None) -> EchoTask:
        with urllib.request.urlopen(file_url, timeout=10) as response:  # a presigned URL: no credentials
            audio = response.read()
        try:
            with wave.open(io.BytesIO(audio), "rb") as reader:
                duration_ms = reader.getnframes() * 1000 // reader.getframerate()
        except (wave.Error, EOFError) as exc:
            raise UnreadableAudio(f"not a WAV: {exc}") from exc
        task = EchoTask(
            task_id=uuid.uuid4().hex, file_url=file_url, words=words, model=model, duration_ms=duration_ms
        )
        with self._lock:
            self._tasks[task.task_id] = task
            if callback_url is not None:
                self._callbacks_owed.append((callback_url, json.dumps({"task_id": task.task_id})))
        return task

    def task(self, task_id: str) -> EchoTask | None:
        with self._lock:
            return self._tasks.get(task_id)

    def call_back(self) -> list[int]:
        """Make every callback owed (POST its body to its URL); the HTTP status each got."""
        with self._lock:
            owed, self._callbacks_owed = self._callbacks_owed, []
        statuses = []
        for url, body in owed:
            request = urllib.request.Request(
                url, data=body.encode(), method="POST", headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                statuses.append(int(response.status))
        return statuses

    def forget_everything(self) -> None:
        with self._lock:
            self._tasks.clear()
            self._callbacks_owed.clear()


SERVICE = EchoService()
