"""`status --wait` and `jobs --watch` over a job store whose jobs move while they look (each look
is one "sleep" of the command, in which the test moves the jobs on)."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from bucketscribe.cli.follow import latest_job, wait_until_final, watch_jobs
from bucketscribe.cli.progress import ProviderFile
from bucketscribe.domain.clock import utc_now
from bucketscribe.domain.job import Attempt, AttemptState, Job, JobError, JobState, PartRef
from bucketscribe.domain.media_routing import MediaProbe
from bucketscribe.domain.upload import ObjectRef
from tests.fakes import InMemoryJobStore

pytestmark = pytest.mark.unit
NOW = utc_now()


def _job(key: str, etag: str = "e1", *, state: JobState = JobState.ACCEPTED, task: str | None = None) -> Job:
    job = Job.for_upload(
        ObjectRef(bucket="recordings", key=key, etag=etag),
        profile="default",
        provider="sis",
        model=None,
        now=NOW,
    )
    attempts = [Attempt(number=1, state=AttemptState.ACCEPTED, started_at=NOW, task_id=task)] if task else []
    media = MediaProbe(container="wav", duration_ms=10_000, size_bytes=1)
    return job.model_copy(update={"state": state, "attempts": attempts, "media": media})


def _moved(jobs: InMemoryJobStore, job: Job, **changes: object) -> Job:
    current = jobs.get(job.id) or job
    moved = current.model_copy(update={"updated_at": current.updated_at + timedelta(seconds=1), **changes})
    jobs.jobs[job.id] = moved
    return moved


class Script:
    """The command's sleeps: the n-th sleep runs the n-th step (moving jobs on), and time passes."""

    def __init__(self, steps: list[Callable[[], object]]) -> None:
        self.steps = steps
        self.now = 0.0
        self.sleeps = 0

    def sleep(self, seconds: float) -> None:
        if self.sleeps < len(self.steps):
            self.steps[self.sleeps]()
        self.sleeps += 1
        self.now += max(seconds, 0.01)

    def clock(self) -> float:
        return self.now


class FakeService:
    def __init__(self, files: list[ProviderFile]) -> None:
        self.files = files
        self.asked = 0

    def provider_files(self) -> list[ProviderFile]:
        self.asked += 1
        return self.files


def test_waiting_on_an_upload_shows_each_stage_until_done_even_before_its_job_exists() -> None:
    jobs = InMemoryJobStore()
    job = _job("incoming/a.wav")
    service = FakeService(
        [ProviderFile(task_id="t1", state="running", audio_ms_total=10_000, audio_ms_done=4_000)]
    )
    script = Script(
        [
            lambda: jobs.create(job),
            lambda: _moved(jobs, job, state=JobState.SUBMITTED, attempts=_job("x", task="t1").attempts),
            lambda: _moved(jobs, job, state=JobState.DONE),
        ]
    )
    progress = io.StringIO()
    found = wait_until_final(
        jobs,
        upload=("recordings", "incoming/a.wav"),
        job_id=None,
        label="a.wav",
        timeout_s=None,
        activity=service,
        progress_out=progress,
        sleep=script.sleep,
        clock=script.clock,
    )
    assert found is not None and found.state is JobState.DONE
    stages = [
        line.split("a.wav", 1)[1].strip() for line in progress.getvalue().splitlines() if "a.wav" in line
    ]
    assert stages == ["uploaded", "queued", "transcribing (4 of 10 s)", "done"]
    assert service.asked == 1  # the service is asked only while it holds the job


def test_a_timeout_returns_the_job_as_it_stands() -> None:
    jobs = InMemoryJobStore()
    job = _job("incoming/slow.wav", state=JobState.SUBMITTED, task="t1")
    jobs.create(job)
    script = Script([])
    found = wait_until_final(
        jobs,
        upload=None,
        job_id=job.id,
        label=job.id,
        timeout_s=5,
        progress_out=io.StringIO(),
        sleep=script.sleep,
        clock=script.clock,
    )
    assert found is not None and found.state is JobState.SUBMITTED
    assert 5 <= script.now < 6  # it gave up at the timeout, not before and not long after


def test_a_later_upload_of_the_key_is_followed_to_its_end() -> None:
    jobs = InMemoryJobStore()
    first, second = _job("incoming/k.wav", "e1"), _job("incoming/k.wav", "e2")
    jobs.create(first)
    # The later upload's job is made first (made earlier than the first by the clock, as a lagging
    # index may list it), then it replaces the first, then it fails.
    script = Script(
        [
            lambda: jobs.create(second.model_copy(update={"created_at": NOW - timedelta(hours=1)})),
            lambda: _moved(jobs, first, state=JobState.SUPERSEDED, superseded_by=second.id),
            lambda: _moved(jobs, second, state=JobState.FAILED, error=JobError(code="SIS.0535", message="x")),
        ]
    )
    found = wait_until_final(
        jobs,
        upload=("recordings", "incoming/k.wav"),
        job_id=None,
        label="k.wav",
        timeout_s=None,
        progress_out=io.StringIO(),
        sleep=script.sleep,
        clock=script.clock,
    )
    assert found is not None and found.id == second.id and found.state is JobState.FAILED


def test_a_split_upload_shows_the_audio_of_its_parts_that_are_done() -> None:
    jobs = InMemoryJobStore()
    parts = [_job(f"incoming/long.wav.part{i}") for i in (1, 2)]
    refs = [
        PartRef(index=i + 1, job_id=p.id, key=p.source.key, start_ms=i * 5_000, end_ms=(i + 1) * 5_000)
        for i, p in enumerate(parts)
    ]
    parent = _job("incoming/long.wav", state=JobState.SUBMITTED).model_copy(update={"parts": refs})
    for job in (parent, *parts):
        jobs.create(job)
    _moved(jobs, parts[0], state=JobState.DONE)
    progress = io.StringIO()
    script = Script([lambda: _moved(jobs, parent, state=JobState.DONE)])
    wait_until_final(
        jobs,
        upload=None,
        job_id=parent.id,
        label="long.wav",
        timeout_s=None,
        progress_out=progress,
        sleep=script.sleep,
        clock=script.clock,
    )
    assert "long.wav  transcribing (5 of 10 s)" in progress.getvalue()


def test_the_watch_shows_every_change_and_follows_jobs_that_leave_the_listing() -> None:
    jobs = InMemoryJobStore()
    a, b = _job("incoming/a.wav", state=JobState.SUBMITTED, task="ta"), _job("incoming/b.wav")
    for job in (a, b):
        jobs.create(job)
    args = argparse.Namespace(json=True, scheme="obs")

    def unfinished() -> list[Job]:  # as `jobs --state SUBMITTED` would list them
        return [
            job
            for job in jobs.listing(state=None, since=None, key_prefix=None, limit=50)
            if not job.state.is_final
        ]

    script = Script(
        [
            lambda: _moved(jobs, a, state=JobState.DONE),
            lambda: _moved(jobs, b, state=JobState.FAILED, error=JobError(code="SIS.0535", message="bad")),
        ]
    )
    out = io.StringIO()
    assert watch_jobs(jobs, args, unfinished, out, sleep=script.sleep, rounds=3) == 0
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    seen = [(e["upload"], e["stage"]) for e in events]
    assert seen == [
        ("obs://recordings/incoming/b.wav", "queued"),
        ("obs://recordings/incoming/a.wav", "submitted"),
        ("obs://recordings/incoming/a.wav", "done"),
        ("obs://recordings/incoming/b.wav", "failed"),
    ]
    assert events[-1]["error_code"] == "SIS.0535" and events[-1]["job_id"] == b.id


def test_the_watch_ends_on_ctrl_c_with_exit_code_0() -> None:
    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    args = argparse.Namespace(json=False, scheme="s3")
    assert watch_jobs(InMemoryJobStore(), args, list, io.StringIO(), sleep=interrupted) == 0


def test_the_watch_prints_plain_lines_where_its_output_is_not_a_terminal() -> None:
    jobs = InMemoryJobStore()
    job = _job("incoming/a.wav", state=JobState.SUBMITTED, task="ta")
    jobs.create(job)
    script = Script([lambda: _moved(jobs, job, state=JobState.DONE)])
    out = io.StringIO()  # not a terminal: no cursor movement, one line per change
    args = argparse.Namespace(json=False, scheme="s3")

    def listed() -> list[Job]:
        return jobs.listing(state=None, since=None, key_prefix=None, limit=50)

    watch_jobs(jobs, args, listed, out, sleep=script.sleep, rounds=2)
    lines = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue()
    assert [line.split()[-1] for line in lines if "s3://" in line] == ["submitted", "done"]
    assert lines[-1].strip() == "[1/1 done · elapsed 0:00]"


def test_latest_job_reads_the_record_not_the_index() -> None:
    jobs = InMemoryJobStore()
    job = _job("incoming/a.wav")
    jobs.create(job)
    _moved(jobs, job, state=JobState.DONE)
    found = latest_job(jobs, ("recordings", "incoming/a.wav"), None)
    assert found is not None and found.state is JobState.DONE
    assert latest_job(jobs, None, None) is None
