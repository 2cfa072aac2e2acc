"""``status --wait`` and ``jobs --watch``: follow jobs in the job store as they move, with the same
progress ``transcribe`` shows.

Where a job stands comes from its record (queued, submitted, done, failed; a split upload's parts
that are done, as audio done) and, where the speech service can say so (the local emulators), from
the service: waiting for a worker, or how much of the audio it has recognised. Progress goes to
stderr for ``status --wait`` (whose result goes to stdout); ``jobs --watch``'s board or lines are
its output, on stdout (a board redrawn in place on a terminal, one line per change otherwise, one
JSON object per change with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bucketscribe.cli.progress import (
    ActivitySource,
    BatchProgress,
    BoardReporter,
    FileProgress,
    LineReporter,
    NoActivity,
    ProviderFile,
    Reporter,
    Stage,
    provider_file_for,
    stage_of,
)
from bucketscribe.domain.job import Job, JobState
from bucketscribe.ports.job_store import JobStore

# How often the job store is read: a strongly consistent read or two per second costs next to
# nothing (on DynamoDB on demand, about $0.25 per million) and keeps a finished job's wait short.
WAIT_POLL_S = 1.0
WATCH_POLL_S = 2.0

Sleep = Callable[[float], None]
Clock = Callable[[], float]


def progress_reporter(out: TextIO) -> Reporter:
    return BoardReporter(out) if out.isatty() else LineReporter(out)


def _at_service(jobs: list[Job]) -> bool:
    """Whether any of ``jobs`` is at the speech service now (only then is the service asked)."""
    return any(job.provider_task_id and not job.state.is_final for job in jobs)


def _progress_of(
    job: Job | None, jobs: JobStore, service_files: list[ProviderFile], progress: FileProgress
) -> bool:
    """Bring ``progress`` up to date from ``job`` (and its parts, and what the speech service says
    of its files); True if it changed."""
    service = provider_file_for(job, service_files) if job is not None else None
    stage = stage_of(job, service)
    audio_ms = job.audio_ms if job is not None else None
    done_ms = service.audio_ms_done if service is not None and stage is Stage.TRANSCRIBING else None
    if job is not None and job.parts and not job.state.is_final:
        # A split upload: its parts are transcribed side by side; the audio of those done is progress.
        parts = [jobs.get(ref.job_id) for ref in job.parts]
        done_ms = sum(
            ref.end_ms - ref.start_ms
            for ref, part in zip(job.parts, parts, strict=True)
            if part is not None and part.state is JobState.DONE
        )
        stage = Stage.TRANSCRIBING
    error_code = job.error.code if job is not None and job.error and stage is Stage.FAILED else None
    error = job.error.message if job is not None and job.error and stage is Stage.FAILED else None
    before = (progress.stage, progress.audio_ms, progress.audio_ms_done, progress.error_code)
    progress.stage, progress.audio_ms, progress.audio_ms_done = stage, audio_ms, done_ms
    progress.error_code, progress.error = error_code, error
    return before != (stage, audio_ms, done_ms, error_code)


# ----- status --wait -----------------------------------------------------------------------------


def latest_job(jobs: JobStore, upload: tuple[str, str] | None, job_id: str | None) -> Job | None:
    """The job to wait on: the upload's latest (a later upload of the key replaces it), or the job."""
    if upload is None:
        return jobs.get(job_id) if job_id else None
    found = jobs.for_source(*upload, limit=1)
    job = jobs.get(found[0].id) if found else None  # the index may lag: the record is read itself
    if job is not None and job.state is JobState.SUPERSEDED and job.superseded_by:
        return jobs.get(job.superseded_by) or job
    return job


def wait_until_final(
    jobs: JobStore,
    *,
    upload: tuple[str, str] | None,
    job_id: str | None,
    label: str,
    timeout_s: float | None,
    activity: ActivitySource | None = None,
    progress_out: TextIO | None = None,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
) -> Job | None:
    """Poll until the job is DONE, FAILED or SUPERSEDED (following a later upload of the key), or
    ``timeout_s`` passes; returns the job as last read (``None``: no job was ever found)."""
    progress = FileProgress(label=label, path=Path(label))
    batch = BatchProgress([progress], clock=clock)
    reporter = progress_reporter(progress_out or sys.stderr)
    deadline = None if timeout_s is None else clock() + timeout_s
    activity = activity or NoActivity()
    first_look = True
    while True:
        job = latest_job(jobs, upload, job_id)
        service_files = activity.provider_files() if job is not None and _at_service([job]) else []
        if _progress_of(job, jobs, service_files, progress) or first_look:
            reporter.changed(batch, progress)
        first_look = False
        reporter.tick(batch)
        if job is not None and job.state.is_final:
            return job
        if deadline is not None and clock() >= deadline:
            return job
        sleep(WAIT_POLL_S if deadline is None else max(0.0, min(WAIT_POLL_S, deadline - clock())))


# ----- jobs --watch ------------------------------------------------------------------------------


def watch_jobs(
    jobs: JobStore,
    args: argparse.Namespace,
    list_now: Callable[[], list[Job]],
    out: TextIO,
    *,
    activity: ActivitySource | None = None,
    sleep: Sleep = time.sleep,
    rounds: int | None = None,
) -> int:
    """Show the listed jobs and every change to them on ``out`` until Ctrl-C (``rounds``: that many
    looks, for tests): the listing as it changes is this command's output, like ``jobs``' own. A
    board redrawn in place when ``out`` is a terminal, one plain line per change otherwise (for
    ``grep`` and logs), one JSON object per change with ``--json``."""
    activity = activity or NoActivity()
    shown: dict[str, FileProgress] = {}
    batch = BatchProgress([])
    reporter = None if args.json else progress_reporter(out)
    looked = 0
    try:
        while rounds is None or looked < rounds:
            looked += 1
            listed = list(reversed(list_now()))  # oldest first: new jobs join at the bottom
            listed_ids = {job.id for job in listed}
            # A job shown earlier that the listing no longer has (it left --state's state, or
            # --limit's window) is read itself until it ends, so the board never shows it stale.
            left = [
                job
                for job_id, progress in shown.items()
                if job_id not in listed_ids and not progress.stage.is_final
                if (job := jobs.get(job_id)) is not None
            ]
            service_files = activity.provider_files() if _at_service([*listed, *left]) else []
            for job in [*listed, *left]:
                progress = shown.get(job.id)
                new = progress is None
                if progress is None:
                    label = f"{args.scheme}://{job.source.bucket}/{job.source.key}"
                    progress = shown[job.id] = FileProgress(label=label, path=Path(job.source.key))
                    batch.files.append(progress)
                if not (_progress_of(job, jobs, service_files, progress) or new):
                    continue
                if reporter is not None:
                    reporter.changed(batch, progress)
                else:
                    _emit(out, job, progress, batch)
            if reporter is not None:
                reporter.tick(batch)
            if rounds is None or looked < rounds:
                sleep(WATCH_POLL_S)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends: not an error
    return 0


def _emit(out: TextIO, job: Job, progress: FileProgress, batch: BatchProgress) -> None:
    event = {
        "event": "job",
        "job_id": job.id,
        "upload": progress.label,
        "state": job.state.value,
        "stage": progress.stage.value,
        "profile": job.profile,
        "provider": job.provider,
        "attempts": len(job.attempts),
        "audio_s": None if progress.audio_ms is None else round(progress.audio_ms / 1000, 2),
        "audio_done_s": None if progress.audio_ms_done is None else round(progress.audio_ms_done / 1000, 2),
        "error_code": progress.error_code,
        "error": progress.error,
        "elapsed_s": round(batch.elapsed_s, 2),
    }
    out.write(json.dumps(event, ensure_ascii=False) + "\n")
    out.flush()
