"""`bucketscribe usage`: its totals are the sums over the job records, as `jobs --json` lists them,
and its prices are infra/prices.toml's."""

from __future__ import annotations

import argparse
import io
import json
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bucketscribe.cli.admin import list_jobs, show_usage
from bucketscribe.cli.usage import PRICE_FILE, PRICED_BY, UNIT_SECONDS, speech_prices
from bucketscribe.domain.clock import utc_now
from bucketscribe.domain.job import Attempt, AttemptState, Job, JobError, JobState, PartOf
from bucketscribe.domain.media_routing import MediaProbe
from bucketscribe.domain.upload import ObjectRef
from tests.fakes import InMemoryJobStore

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
NOW = utc_now()


def _attempt(number: int, state: AttemptState, task: str | None, *, listed_none: bool = False) -> Attempt:
    return Attempt(number=number, state=state, started_at=NOW, task_id=task, listed_none=listed_none)


def _job(
    key: str,
    *,
    provider: str = "sis",
    profile: str = "default",
    state: JobState = JobState.DONE,
    audio_ms: int | None = 90_000,
    attempts: list[Attempt] | None = None,
    created: datetime = NOW,
    part_of: PartOf | None = None,
    code: str | None = None,
) -> Job:
    job = Job.for_upload(
        ObjectRef(bucket="recordings", key=key, etag=key),
        profile=profile,
        provider=provider,
        model=None,
        now=created,
    )
    media = None if audio_ms is None else MediaProbe(container="wav", duration_ms=audio_ms, size_bytes=1000)
    return job.model_copy(
        update={
            "state": state,
            "media": media,
            "attempts": attempts
            if attempts is not None
            else [_attempt(1, AttemptState.ACCEPTED, f"t-{key}")],
            "part_of": part_of,
            "error": JobError(code=code, message="why") if code else None,
        }
    )


def records() -> list[Job]:
    """Every case usage must count: duplicates, unknown outcomes, parts, unpriced providers,
    unknown lengths, failures, unfinished and superseded jobs, other days."""
    return [
        _job("incoming/a.wav"),
        _job("incoming/b.wav", provider="dashscope", profile="dashscope", audio_ms=30_000),
        # A lost answer resolved too late: two tasks, one paid for twice.
        _job(
            "incoming/c.wav",
            attempts=[_attempt(1, AttemptState.ACCEPTED, "t1"), _attempt(2, AttemptState.ACCEPTED, "t2")],
        ),
        # Refused, then an answer that never came, then one abandoned with the listing showing none.
        _job(
            "incoming/d.wav",
            state=JobState.SUBMITTING,
            attempts=[
                _attempt(1, AttemptState.REFUSED, None),
                _attempt(2, AttemptState.ABANDONED, None, listed_none=True),
                _attempt(3, AttemptState.UNCERTAIN, None),
            ],
        ),
        _job("incoming/e.wav", state=JobState.FAILED, code="SIS.0535"),
        _job("incoming/f.wav", state=JobState.FAILED, code="NEVER_SUBMITTED", attempts=[]),
        _job("incoming/g.wav", state=JobState.SUPERSEDED, audio_ms=None),
        _job("live/h.wav", provider="dashscope-realtime", profile="live", audio_ms=12_000),
        _job("incoming/old.wav", created=NOW - timedelta(days=2)),
        # A long upload in two parts: the upload is the file, each part a job with its own task.
        _job("incoming/long.wav", state=JobState.SUBMITTED, audio_ms=7_200_000, attempts=[]),
        _job(
            "incoming/long.wav.part1",
            audio_ms=None,
            part_of=PartOf(parent_id="p", index=1, count=2, start_ms=0, end_ms=3_600_000),
        ),
        _job(
            "incoming/long.wav.part2",
            audio_ms=None,
            part_of=PartOf(parent_id="p", index=2, count=2, start_ms=3_600_000, end_ms=7_200_000),
        ),
    ]


def _store(jobs: list[Job]) -> InMemoryJobStore:
    store = InMemoryJobStore()
    for job in jobs:
        store.jobs[job.id] = job
    return store


def _run(command: Any, store: InMemoryJobStore, **options: Any) -> str:
    defaults = {"state": None, "since": None, "prefix": None, "limit": 1000, "json": True, "scheme": "s3"}
    out = io.StringIO()
    assert (
        command(argparse.Namespace(**{**defaults, "by": None, "where": "memory", **options}), store, out) == 0
    )
    return out.getvalue()


def _sums_over(views: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures, summed by hand over the job records as the status API shows them."""
    prices = tomllib.loads((REPO / "infra" / "prices.toml").read_text(encoding="utf-8"))["speech"]
    per_minute = {
        "sis": prices["sis_recording_file"]["price"] * 60 / 3600,
        "dashscope": prices["dashscope_paraformer"]["price"] * 60,
    }
    files = [v for v in views if v["part_of"] is None]
    sums: dict[str, Any] = {
        "files": len(files),
        "done": sum(v["state"] == "DONE" for v in files),
        "failed": sum(v["state"] == "FAILED" for v in files),
        "audio_minutes": sum(v["media"]["duration_ms"] for v in files if v["media"]) / 60_000,
        "provider_jobs": 0,
        "duplicates_paid": 0,
        "cost": 0.0,
    }
    for view in views:
        tasks = sum(1 for a in view["attempts"] if a["provider_task_id"])
        sums["provider_jobs"] += tasks
        sums["duplicates_paid"] += max(tasks - 1, 0)
        part = view["part_of"]
        audio_ms = part["end_ms"] - part["start_ms"] if part else (view["media"] or {}).get("duration_ms")
        if audio_ms and view["provider"] in per_minute:
            sums["cost"] += tasks * audio_ms / 60_000 * per_minute[view["provider"]]
    return sums


def test_usage_totals_are_the_sums_over_the_job_records() -> None:
    store = _store(records())
    views = [json.loads(line) for line in _run(list_jobs, store).splitlines()]
    assert len(views) == len(records())
    expected = _sums_over(views)
    total = json.loads(_run(show_usage, store))["total"]
    for figure in ("files", "done", "failed", "provider_jobs", "duplicates_paid"):
        assert total[figure] == expected[figure], figure
    assert total["audio_minutes"] == pytest.approx(expected["audio_minutes"])
    assert total["cost"]["CNY"] == pytest.approx(expected["cost"])
    # What the hand sums do not cover, checked against the records above directly.
    assert total["duplicates_paid"] == 1 and total["provider_jobs"] == 10
    assert total["attempts_outcome_unknown"] == 1  # the UNCERTAIN one; the listed-none one cost nothing
    assert total["failed_by_code"] == {"SIS.0535": 1, "NEVER_SUBMITTED": 1}
    assert (total["unfinished"], total["superseded"], total["files_of_unknown_length"]) == (2, 1, 1)
    assert total["unpriced_minutes"] == {"dashscope-realtime": pytest.approx(0.2)}


def test_groups_add_up_to_the_total_and_since_counts_jobs_created_since() -> None:
    store = _store(records())
    for by in ("profile", "provider", "day"):
        report = json.loads(_run(show_usage, store, by=by))
        for figure in ("files", "done", "failed", "provider_jobs", "duplicates_paid"):
            assert sum(group[figure] for group in report["groups"].values()) == report["total"][figure]
    by_day = json.loads(_run(show_usage, store, by="day"))["groups"]
    assert by_day[(NOW - timedelta(days=2)).date().isoformat()]["files"] == 1
    # The old job was changed recently (its updated_at is now): the store lists it, usage leaves it out.
    since = json.loads(_run(show_usage, store, since="1d"))["total"]
    recent = [j for j in records() if j.part_of is None and j.created_at >= NOW - timedelta(days=1)]
    assert since["files"] == len(recent) == json.loads(_run(show_usage, store))["total"]["files"] - 1


def test_the_text_says_what_was_counted_and_that_the_cost_is_an_estimate() -> None:
    text = _run(show_usage, _store(records()), json=False, by="provider")
    assert "PROVIDER" in text and "TOTAL" in text and "dashscope-realtime" in text
    assert "1 duplicate paid; 1 attempt whose outcome was never learnt" in text
    assert "dashscope 0.00008 CNY per second of speech" in text
    assert "SIS.0535 ×1" in text and "Not a bill" in text and "Not priced: dashscope-realtime" in text


def test_the_shipped_prices_are_infra_prices_speech_tables() -> None:
    shipped_path = REPO / "shared" / "bucketscribe" / "cli" / PRICE_FILE
    shipped = tomllib.loads(shipped_path.read_text(encoding="utf-8"))
    infra = tomllib.loads((REPO / "infra" / "prices.toml").read_text(encoding="utf-8"))
    assert shipped == {"speech": infra["speech"]}
    for table in PRICED_BY.values():
        assert shipped["speech"][table]["unit"] in UNIT_SECONDS  # a price the CLI can turn into minutes
    prices = speech_prices()
    assert prices["sis"].per_minute == pytest.approx(2.5 / 60)  # ¥2.5 per audio hour
    assert prices["dashscope"].per_minute == pytest.approx(0.00008 * 60)
