"""What `transcribe` shows: stages from job records and the service's own report, counts, ETA, output."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bucketscribe.cli.progress import (
    BatchProgress,
    BoardReporter,
    FileProgress,
    JsonReporter,
    LineReporter,
    ProviderFile,
    Stage,
    board_lines,
    clock_text,
    provider_file_for,
    stage_of,
)
from bucketscribe.domain.job import Attempt, AttemptState, Job, JobError, JobState
from bucketscribe.domain.upload import ObjectRef

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def job(state: JobState, *, task: str | None = "task-1", file: str | None = None) -> Job:
    ref = ObjectRef(bucket="recordings", key="incoming/a.wav", etag="e")
    attempts = []
    if task is not None:
        accepted = Attempt(
            number=1, state=AttemptState.ACCEPTED, started_at=NOW, task_id=task, provider_file=file
        )
        attempts.append(accepted)
    return Job(id=ref.job_id(), source=ref, provider="sis", state=state, attempts=attempts)


def service(
    state: str, *, task: str = "task-1", url: str | None = None, done_ms: int | None = None
) -> ProviderFile:
    return ProviderFile.model_validate(
        {"task_id": task, "file_url": url, "state": state, "audio_ms_total": 60_000, "audio_ms_done": done_ms}
    )


@pytest.mark.parametrize(
    ("record", "row", "stage"),
    [
        (None, None, Stage.UPLOADED),
        (job(JobState.ACCEPTED, task=None), None, Stage.QUEUED),
        (job(JobState.SUBMITTING, task=None), None, Stage.QUEUED),  # not accepted by the service yet
        (job(JobState.SUBMITTED), None, Stage.SUBMITTED),  # the service does not say: no guess
        (job(JobState.SUBMITTED), service("queued"), Stage.SUBMITTED),  # in the service's own queue
        (job(JobState.SUBMITTED), service("running", done_ms=5000), Stage.TRANSCRIBING),
        (job(JobState.SUBMITTED), service("finished"), Stage.FINISHING),
        (job(JobState.DONE), service("finished"), Stage.DONE),
        (job(JobState.FAILED), None, Stage.FAILED),
    ],
)
def test_a_files_stage_comes_from_its_job_and_the_service(
    record: Job | None, row: ProviderFile | None, stage: Stage
) -> None:
    assert stage_of(record, row) is stage


def test_the_services_row_is_matched_by_task_and_within_a_task_by_media() -> None:
    rows = [
        service("running", task="other"),
        service("queued", task="t", url="http://127.0.0.1:9/recordings/incoming/b.wav?X-Amz-Signature=1"),
        service(
            "running", task="t", url="http://127.0.0.1:9/recordings/incoming/a%20b.wav?X-Amz-Signature=2"
        ),
    ]
    one_file_task = job(JobState.SUBMITTED, task="other")
    assert provider_file_for(one_file_task, rows) is rows[0]
    in_shared_task = job(JobState.SUBMITTED, task="t", file="127.0.0.1:9/recordings/incoming/a b.wav")
    assert provider_file_for(in_shared_task, rows) is rows[2]
    assert provider_file_for(job(JobState.SUBMITTED, task="unknown"), rows) is None


def batch_of(*durations: int | None) -> tuple[BatchProgress, FakeClock]:
    clock = FakeClock()
    files = [
        FileProgress(label=f"f{i}.wav", path=Path(f"f{i}.wav"), audio_ms=d) for i, d in enumerate(durations)
    ]
    return BatchProgress(files, clock=clock), clock


def test_eta_follows_the_audio_processed_including_progress_within_a_long_file() -> None:
    batch, clock = batch_of(60_000, 60_000)
    assert batch.eta_s() is None  # nothing processed yet: no guess
    clock.now += 10
    batch.files[0].stage, batch.files[0].audio_ms_done = Stage.TRANSCRIBING, 30_000
    # 30 s of 120 s of audio in 10 s: 90 s of audio left at 3 s of audio per second.
    assert batch.eta_s() == pytest.approx(30.0)
    batch.files[0].stage = Stage.DONE
    clock.now += 10
    assert batch.eta_s() == pytest.approx(20.0)
    assert batch.overall_line() == "1/2 done · elapsed 0:20 · ETA 0:20"


def test_eta_counts_files_when_a_length_is_unknown_and_stops_when_all_are_final() -> None:
    batch, clock = batch_of(None, 10_000, 10_000, 10_000)
    clock.now += 30
    batch.files[0].stage = Stage.FAILED
    assert batch.eta_s() == pytest.approx(90.0)
    assert batch.overall_line() == "0/4 done · 1 failed · elapsed 0:30 · ETA 1:30"
    for progress in batch.files[1:]:
        progress.stage = Stage.DONE
    assert batch.finished and batch.overall_line() == "3/4 done · 1 failed · elapsed 0:30"


def test_clock_text() -> None:
    assert [clock_text(s) for s in (0, 59.6, 61, 3600 + 62)] == ["0:00", "1:00", "1:01", "1:01:02"]


def test_plain_lines_name_each_change_and_the_overall_line_after_a_file_ends() -> None:
    batch, clock = batch_of(60_000, 36_000)
    out = io.StringIO()
    lines = LineReporter(out)
    first = batch.files[0]
    first.stage, first.audio_ms_done = Stage.TRANSCRIBING, 12_000
    clock.now += 5
    lines.changed(batch, first)
    first.stage, first.error_code, first.error = Stage.FAILED, "SIS.0535", "Audio format is invalid!"
    lines.changed(batch, first)
    assert out.getvalue().splitlines() == [
        "     0:05  f0.wav  transcribing (12 of 60 s)",
        "     0:05  f0.wav  failed (SIS.0535: Audio format is invalid!)",
        "  [0/2 done · 1 failed · elapsed 0:05 · ETA 0:03]",  # 36 s left at 60 s of audio per 5 s
    ]


def test_json_events_carry_the_file_and_the_batch() -> None:
    batch, clock = batch_of(60_000)
    out = io.StringIO()
    progress = batch.files[0]
    progress.stage, progress.outputs = Stage.DONE, [Path("out/f0.wav.txt")]
    clock.now += 2
    JsonReporter(out).changed(batch, progress)
    file_event, batch_event = (json.loads(line) for line in out.getvalue().splitlines())
    assert file_event == {
        "event": "file",
        "file": "f0.wav",
        "path": "f0.wav",
        "state": "done",
        "audio_s": 60.0,
        "audio_done_s": None,
        "error_code": None,
        "error": None,
        "outputs": ["out/f0.wav.txt"],
        "elapsed_s": 2.0,
    }
    assert batch_event == {
        "event": "progress",
        "done": 1,
        "failed": 0,
        "total": 1,
        "elapsed_s": 2.0,
        "eta_s": None,
    }


def test_the_board_redraws_in_place_over_the_lines_it_drew() -> None:
    batch, clock = batch_of(1000, 1000)
    out = io.StringIO()
    board = BoardReporter(out, clock=clock)
    board.changed(batch, batch.files[0])
    first = out.getvalue()
    assert first.count("\n") == 3 and "\x1b[" not in first.split("\x1b[2K", 1)[0]
    board.tick(batch)  # within the redraw interval: nothing new
    assert out.getvalue() == first
    clock.now += 1
    board.tick(batch)
    assert out.getvalue()[len(first) :].startswith("\x1b[3F")  # back up over the 3 lines


def test_a_board_too_long_for_the_terminal_keeps_the_unfinished_files() -> None:
    files = [FileProgress(label=f"f{i}.wav", path=Path(f"f{i}.wav")) for i in range(10)]
    for progress in files[:7]:
        progress.stage = Stage.DONE
    files[8].stage = Stage.TRANSCRIBING
    lines = board_lines(files, room=4)
    assert [line.split()[-1] for line in lines[:3]] == ["f7.wav", "f8.wav", "f9.wav"]
    assert lines[-1] == "  … and 7 more (done or not shown)"


def test_a_failed_files_detail_is_its_reason() -> None:
    progress = FileProgress(label="a", path=Path("a"), stage=Stage.FAILED)
    error = JobError(code="NOT_MEDIA", message="the content is not audio")
    progress.error_code, progress.error = error.code, error.message
    assert progress.detail() == "NOT_MEDIA: the content is not audio"


def test_plain_lines_within_a_long_file_come_once_per_tenth_of_its_audio() -> None:
    batch, _ = batch_of(100_000)
    out = io.StringIO()
    lines = LineReporter(out)
    progress = batch.files[0]
    progress.stage = Stage.TRANSCRIBING
    for done_ms in (0, 4_000, 9_000, 10_000, 15_000, 31_000):
        progress.audio_ms_done = done_ms
        lines.changed(batch, progress)
    shown = [line.split("(")[1].rstrip(")") for line in out.getvalue().splitlines()]
    assert shown == ["0 of 100 s", "10 of 100 s", "31 of 100 s"]


def test_a_notice_before_any_file_is_known_draws_no_empty_board() -> None:
    out = io.StringIO()
    BoardReporter(out).print_above(BatchProgress([]), ["streaming to a local emulator"])
    assert "0/0" not in out.getvalue() and "streaming to a local emulator\n" in out.getvalue()
