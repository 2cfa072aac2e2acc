"""The operator's commands over the job store: list, find by upload, re-drive (never twice in flight)."""

import argparse
import io
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TextIO

import pytest

from bucketscribe.cli.admin import AdminUsageError, list_jobs, parse_since, parse_upload, redrive, show_status
from bucketscribe.domain.clock import utc_now
from bucketscribe.domain.job import Job, JobError, JobState
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.ports.job_store import JobStore
from tests.fakes import InMemoryJobStore

pytestmark = pytest.mark.unit
NOW = utc_now()


def stored(
    jobs: InMemoryJobStore, key: str, *, etag: str = "e1", failed: bool = False, at: datetime = NOW
) -> Job:
    job = Job.for_upload(
        ObjectRef(bucket="recordings", key=key, etag=etag),
        profile="default",
        provider="sis",
        model=None,
        now=at,
    )
    if failed:
        job = job.fail(at, JobError(code="NEVER_SUBMITTED", message="SIS refused it 8 times"))
    jobs.create(job)
    return job


def run(
    command: Callable[[argparse.Namespace, JobStore, TextIO], int], jobs: InMemoryJobStore, **options: Any
) -> tuple[int, str]:
    defaults = {"state": None, "since": None, "prefix": None, "limit": 50, "json": False, "scheme": "s3"}
    out = io.StringIO()
    code = command(argparse.Namespace(**{**defaults, **options}), jobs, out)
    return code, out.getvalue()


def test_the_listing_shows_state_attempts_age_upload_and_why_it_failed() -> None:
    jobs = InMemoryJobStore()
    stored(jobs, "incoming/ok.wav")
    bad = stored(jobs, "incoming/calls/bad.wav", failed=True)
    code, text = run(list_jobs, jobs, state="FAILED")
    assert code == 0
    (line,) = text.splitlines()[1:]
    assert line.startswith("FAILED") and bad.id in line and "s3://recordings/incoming/calls/bad.wav" in line
    assert "NEVER_SUBMITTED: SIS refused it 8 times" in line
    _, everything = run(list_jobs, jobs, json=True)
    assert {json.loads(row)["state"] for row in everything.splitlines()} == {"ACCEPTED", "FAILED"}


def test_status_finds_the_latest_job_of_an_upload_without_its_etag() -> None:
    jobs = InMemoryJobStore()
    first = stored(jobs, "incoming/a b.wav", etag="e1", at=NOW - timedelta(hours=1))
    latest = stored(jobs, "incoming/a b.wav", etag="e2")
    code, text = run(show_status, jobs, target="s3://recordings/incoming/a b.wav")
    assert code == 0 and latest.id in text.splitlines()[0] and first.id in text
    code, text = run(show_status, jobs, target="s3://recordings/incoming/a b.wav", json=True)
    assert json.loads(text)["latest"]["id"] == latest.id and json.loads(text)["earlier"] == [first.id]
    assert run(show_status, jobs, target="obs://recordings/incoming/none.wav")[0] == 1
    with pytest.raises(AdminUsageError):
        run(show_status, jobs, target="not-a-target")


def test_status_says_an_upload_waits_for_the_providers_capacity_and_since_when() -> None:
    jobs = InMemoryJobStore()
    now = utc_now()  # the command reads the clock: 42.5 min ago prints as 42m for half a minute
    job = Job.for_upload(
        ObjectRef(bucket="recordings", key="incoming/queued.wav"),
        profile="p",
        provider="sis",
        model=None,
        now=now,
    )
    busy = JobError(code="SIS.0312", message="too many concurrent jobs")
    waiting_since = now - timedelta(minutes=42, seconds=30)
    jobs.create(job.model_copy(update={"waiting_since": waiting_since, "capacity_waits": 7, "error": busy}))
    code, text = run(
        show_status, jobs, target="s3://recordings/incoming/queued.wav", timeout=None, wait=False
    )
    assert code == 0
    assert "waiting for sis's capacity for 42m (7 times turned away) — SIS.0312" in text
    _, raw = run(show_status, jobs, target="s3://recordings/incoming/queued.wav", json=True)
    assert json.loads(raw)["latest"]["capacity_waits"] == 7


def test_redrive_runs_failed_jobs_again_and_never_one_in_flight() -> None:
    jobs = InMemoryJobStore()
    failed = stored(jobs, "incoming/failed.wav", failed=True)
    flying = stored(jobs, "incoming/flying.wav")
    code, text = run(
        redrive, jobs, job_ids=[failed.id, flying.id], failed=False, reason="fixed", include_done=False
    )
    assert code == 1  # one of the two was refused, and says why
    assert f"REDRIVEN     {failed.id}" in text and f"IN_FLIGHT    {flying.id}" in text
    again = jobs.get(failed.id)
    assert (
        again.state is JobState.ACCEPTED
        and again.redrives == 1
        and again.next_attempt_reason == "re-driven: fixed"
    )
    assert jobs.get(flying.id) == flying


def test_redrive_failed_takes_every_failed_job_since_a_time() -> None:
    jobs = InMemoryJobStore()
    old = stored(jobs, "incoming/old.wav", failed=True, at=NOW - timedelta(days=3))
    new = stored(jobs, "incoming/new.wav", failed=True)
    code, _ = run(
        redrive, jobs, job_ids=[], failed=True, since="1d", reason="outage over", include_done=False
    )
    assert code == 0
    assert jobs.get(new.id).state is JobState.ACCEPTED and jobs.get(old.id).state is JobState.FAILED


def test_times_and_uploads_are_read_the_way_operators_write_them() -> None:
    assert parse_since("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_since("2026-11-20T09:00", NOW).tzinfo is not None
    with pytest.raises(AdminUsageError):
        parse_since("yesterday", NOW)
    assert parse_upload("s3://b/incoming/a b+c.wav") == ("b", "incoming/a b+c.wav")
    assert parse_upload("obs://b/k") == ("b", "k") and parse_upload("b/k") is None


def test_status_shows_where_each_delivery_of_the_jobs_end_stands_and_no_secret() -> None:
    from bucketscribe.domain.job_events import Channel, DeliveryState, EventDelivery
    from tests.job_events import sample_event

    jobs = InMemoryJobStore()
    job = stored(jobs, "incoming/told.wav", failed=True)
    event = sample_event(job.id, failed=True, key="incoming/told.wav").model_copy(
        update={
            "deliveries": [
                EventDelivery(
                    channel=Channel.WEBHOOK,
                    attempts=2,
                    next_attempt_at=utc_now() + timedelta(minutes=4, seconds=30),
                    last_error="the receiver answered HTTP 500",
                ),
                EventDelivery(channel=Channel.EVENT_BUS, state=DeliveryState.DELIVERED, attempts=1),
            ]
        }
    )
    assert jobs.save(job.with_deliveries(NOW, [event]))
    code, text = run(show_status, jobs, target=job.id)
    assert code == 0
    lines = text.splitlines()
    at = lines.index(f"  event   transcript.failed {event.id}")
    assert lines[at + 1] == "    webhook PENDING, 2 attempts, next in 4m: the receiver answered HTTP 500"
    assert lines[at + 2] == "    event_bus DELIVERED, 1 attempt"
    _, as_json = run(show_status, jobs, target=job.id, json=True)
    (shown,) = json.loads(as_json)["latest"]["events"]
    assert [d["state"] for d in shown["deliveries"]] == ["PENDING", "DELIVERED"]
