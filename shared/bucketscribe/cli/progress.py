"""What ``transcribe`` shows while it works, from what really happens to each file.

A file's stage comes from its job record (queued for the submit function, submitted, done,
failed) and, where the speech service can say so, from the service itself: the local
emulators list the files they hold at ``GET /_emulator/jobs`` (waiting for a worker, being
recognised with how much audio is decoded, finished). ``ActivitySource`` is that one question;
without an answer a submitted file simply shows "submitted".

Four ways to show it: a board redrawn in place on a terminal, one plain line per change
otherwise, one JSON object per line for scripts (``--json``), or nothing (``--quiet``).
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

from pydantic import BaseModel, ConfigDict, ValidationError

from bucketscribe.domain.job import Job, JobState
from bucketscribe.ports.provider import file_key

Clock = Callable[[], float]


class Stage(StrEnum):
    UPLOADED = "uploaded"  # in the bucket, no job yet
    QUEUED = "queued"  # waiting for the submit function, or for a worker at the service
    SUBMITTED = "submitted"  # the service has it; it does not say whether it has started
    TRANSCRIBING = "transcribing"  # the service is recognising it
    FINISHING = "finishing"  # the service is done; the result is on its way into the bucket
    DONE = "done"
    FAILED = "failed"
    SUPERSEDED = "superseded"  # the key was uploaded again before this one's outputs were written
    TIMED_OUT = "timed out"  # still unfinished when --timeout ran out

    @property
    def is_final(self) -> bool:
        return self in (Stage.DONE, Stage.FAILED, Stage.SUPERSEDED, Stage.TIMED_OUT)


# ----- what the speech service says ------------------------------------------------------------


class ProviderFile(BaseModel):
    """One file a speech-service task holds, as an emulator's ``GET /_emulator/jobs`` lists it."""

    model_config = ConfigDict(extra="ignore")

    task_id: str
    file_url: str | None = None
    state: Literal["queued", "running", "finished", "failed", "expired"]
    audio_ms_total: int | None = None
    audio_ms_done: int | None = None


class _EmulatorJobs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    jobs: list[ProviderFile]


class ActivitySource(Protocol):
    def provider_files(self) -> list[ProviderFile]:
        """Every file the speech services hold right now (empty when they cannot say)."""
        ...


class NoActivity:
    def provider_files(self) -> list[ProviderFile]:
        return []


class EmulatorActivity:
    """Asks each local emulator which files it holds; one without the route is not asked again."""

    ROUTE = "/_emulator/jobs"

    def __init__(self, base_urls: list[str], *, timeout_s: float = 2.0) -> None:
        self._urls = list(base_urls)
        self._timeout_s = timeout_s

    def provider_files(self) -> list[ProviderFile]:
        files: list[ProviderFile] = []
        for url in list(self._urls):
            try:
                with urllib.request.urlopen(url + self.ROUTE, timeout=self._timeout_s) as response:  # noqa: S310 - our loopback emulators
                    files += _EmulatorJobs.model_validate_json(response.read()).jobs
            except urllib.error.HTTPError as error:
                if error.code in (404, 405):
                    self._urls.remove(url)
            except ValidationError:
                self._urls.remove(url)  # not the shape we know: guessing would show untruths
            except OSError:
                continue  # busy or stopping: the next poll asks again
        return files


def provider_file_for(job: Job, files: list[ProviderFile]) -> ProviderFile | None:
    """The service's row for ``job``: same task, and within a many-file task the same media."""
    for candidate in files:
        if candidate.task_id != job.provider_task_id:
            continue
        if job.provider_file is None or candidate.file_url is None:
            return candidate
        if file_key(candidate.file_url) == job.provider_file:
            return candidate
    return None


def stage_of(job: Job | None, service: ProviderFile | None) -> Stage:
    if job is None:
        return Stage.UPLOADED
    if job.state is JobState.DONE:
        return Stage.DONE
    if job.state is JobState.FAILED:
        return Stage.FAILED
    if job.state is JobState.SUPERSEDED:
        return Stage.SUPERSEDED
    if job.provider_task_id is None:  # not (yet) accepted by the service: being submitted
        return Stage.QUEUED
    if service is None:
        return Stage.SUBMITTED
    # The service has it: waiting in its own queue is "submitted" (ours is "queued").
    return {
        "queued": Stage.SUBMITTED,
        "running": Stage.TRANSCRIBING,
    }.get(service.state, Stage.FINISHING)


# ----- the batch ---------------------------------------------------------------------------------


@dataclass
class FileProgress:
    label: str
    path: Path
    audio_ms: int | None = None
    stage: Stage = Stage.UPLOADED
    audio_ms_done: int | None = None
    error_code: str | None = None
    error: str | None = None
    outputs: list[Path] = field(default_factory=list)
    live_text: str | None = None
    """What the service hears right now: a real-time stream's latest interim hypothesis."""

    def detail(self) -> str:
        """A few words after the stage: how far into the audio (and what is being heard), or why it failed."""
        if self.stage is Stage.TRANSCRIBING and self.audio_ms_done is not None and self.audio_ms:
            done = f"{self.audio_ms_done / 1000:.0f} of {self.audio_ms / 1000:.0f} s"
            return f"{done} · {self.live_text}" if self.live_text else done
        if self.error:
            return f"{self.error_code}: {self.error}" if self.error_code else self.error
        return ""


class BatchProgress:
    """Every file's progress plus the batch's clock: counts, elapsed time and an ETA."""

    def __init__(self, files: list[FileProgress], *, clock: Clock = time.monotonic) -> None:
        self.files = files
        self._clock = clock
        self._started = clock()

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self._started

    @property
    def done(self) -> int:
        return sum(1 for f in self.files if f.stage is Stage.DONE)

    @property
    def failed(self) -> int:
        return sum(1 for f in self.files if f.stage.is_final and f.stage is not Stage.DONE)

    @property
    def finished(self) -> bool:
        return all(f.stage.is_final for f in self.files)

    def eta_s(self) -> float | None:
        """Time left at the rate seen so far: in seconds of audio when every length is known
        (so progress within a long file counts), else in files. None until something is processed."""
        elapsed = self.elapsed_s
        if all(f.audio_ms for f in self.files):
            processed = sum(_audio_processed(f) for f in self.files)
            remaining = sum(f.audio_ms or 0 for f in self.files) - processed
        else:
            processed = sum(1 for f in self.files if f.stage.is_final)
            remaining = len(self.files) - processed
        if processed <= 0 or elapsed <= 0:
            return None
        return remaining * elapsed / processed

    def overall_line(self) -> str:
        parts = [f"{self.done}/{len(self.files)} done"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        parts.append(f"elapsed {clock_text(self.elapsed_s)}")
        eta = None if self.finished else self.eta_s()
        if not self.finished:
            parts.append(f"ETA {clock_text(eta) if eta is not None else '–'}")
        return " · ".join(parts)


def _audio_processed(progress: FileProgress) -> int:
    if progress.stage.is_final:
        return progress.audio_ms or 0
    return min(progress.audio_ms_done or 0, progress.audio_ms or 0)


def clock_text(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


# ----- showing it --------------------------------------------------------------------------------


class Reporter(Protocol):
    def changed(self, batch: BatchProgress, file: FileProgress) -> None: ...

    def tick(self, batch: BatchProgress) -> None:
        """Called every poll, whether or not anything changed (a board's clock moves on)."""
        ...


class QuietReporter:
    def changed(self, batch: BatchProgress, file: FileProgress) -> None:
        return

    def tick(self, batch: BatchProgress) -> None:
        return


class LineReporter:
    """One line per change, for logs and pipes; the overall line after each file that finishes.

    Within a long file, a line per tenth of its audio: the service may report every segment.
    """

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._shown: dict[str, tuple[Stage, int]] = {}

    def changed(self, batch: BatchProgress, file: FileProgress) -> None:
        tenth = (10 * (file.audio_ms_done or 0)) // file.audio_ms if file.audio_ms else 0
        if self._shown.get(file.label) == (file.stage, tenth):
            return
        self._shown[file.label] = (file.stage, tenth)
        detail = file.detail()
        width = max(len(f.label) for f in batch.files)
        line = f"  {clock_text(batch.elapsed_s):>7}  {file.label:<{width}}  {file.stage.value}"
        self._out.write(line + (f" ({detail})" if detail else "") + "\n")
        if file.stage.is_final:
            self._out.write(f"  [{batch.overall_line()}]\n")
        self._out.flush()

    def tick(self, batch: BatchProgress) -> None:
        return


class JsonReporter:
    """One JSON object per line: ``{"event": "file", ...}`` per change, ``"progress"`` after it."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def changed(self, batch: BatchProgress, file: FileProgress) -> None:
        self.emit(
            {
                "event": "file",
                "file": file.label,
                "path": str(file.path),
                "state": file.stage.value,
                "audio_s": _seconds(file.audio_ms),
                "audio_done_s": _seconds(file.audio_ms_done),
                "error_code": file.error_code,
                "error": file.error,
                "outputs": [str(p) for p in file.outputs],
                "elapsed_s": round(batch.elapsed_s, 2),
            }
        )
        eta = batch.eta_s()
        self.emit(
            {
                "event": "progress",
                "done": batch.done,
                "failed": batch.failed,
                "total": len(batch.files),
                "elapsed_s": round(batch.elapsed_s, 2),
                "eta_s": None if eta is None or batch.finished else round(eta, 1),
            }
        )

    def tick(self, batch: BatchProgress) -> None:
        return

    def emit(self, event: dict[str, Any]) -> None:
        self._out.write(json.dumps(event, ensure_ascii=False) + "\n")
        self._out.flush()


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else round(ms / 1000, 2)


class BoardReporter:
    """The overall line and one line per file, redrawn in place (a terminal only)."""

    REDRAW_EVERY_S = 0.5

    def __init__(self, out: TextIO, *, clock: Clock = time.monotonic) -> None:
        self._out = out
        self._clock = clock
        self._drawn_lines = 0
        self._last_draw = float("-inf")

    def changed(self, batch: BatchProgress, file: FileProgress) -> None:
        self._draw(batch)

    def tick(self, batch: BatchProgress) -> None:
        if self._clock() - self._last_draw >= self.REDRAW_EVERY_S:
            self._draw(batch)

    def print_above(self, batch: BatchProgress, lines: list[str]) -> None:
        """Lines that stay (a stream's final sentences), written where the board was; the board is
        redrawn under them."""
        up = f"\x1b[{self._drawn_lines}F" if self._drawn_lines else ""
        self._out.write(up + "\x1b[J" + "".join(f"{line}\n" for line in lines))
        self._drawn_lines = 0
        self._draw(batch)

    def _draw(self, batch: BatchProgress) -> None:
        if not batch.files:  # nothing started yet (a notice printed first): no "0/0 done" board
            return
        width, height = shutil.get_terminal_size()
        lines = [batch.overall_line(), *board_lines(batch.files, max(height - 3, 3))]
        text = "".join(f"\x1b[2K{line[: width - 1]}\n" for line in lines)
        up = f"\x1b[{self._drawn_lines}F" if self._drawn_lines else ""
        self._out.write(f"{up}{text}\x1b[J")
        self._out.flush()
        self._drawn_lines = len(lines)
        self._last_draw = self._clock()


def board_lines(files: list[FileProgress], room: int) -> list[str]:
    """A line per file; when they do not fit, the finished ones give way to a count."""
    shown = files
    hidden = 0
    if len(files) > room:
        active = [f for f in files if f.stage is not Stage.DONE]
        shown = active[: room - 1]
        hidden = len(files) - len(shown)
    width = max((len(f.stage.value) for f in shown), default=0)
    lines = []
    for progress in shown:
        detail = progress.detail()
        lines.append(
            f"  {progress.stage.value:<{width}}  {progress.label}" + (f"  ({detail})" if detail else "")
        )
    if hidden:
        lines.append(f"  … and {hidden} more (done or not shown)")
    return lines
