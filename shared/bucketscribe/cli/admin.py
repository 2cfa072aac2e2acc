"""The operator's commands on the job store: ``jobs``, ``status``, ``redrive``.

They read the same settings as the functions (``BUCKETSCRIBE_JOBS_TABLE``, the endpoint, the AWS
credentials of the shell; ``bucketscribe up`` prints them for the local stack), so what they show
is what the deployed pipeline sees. A re-drive only marks jobs: the reconciler's next run submits
them, so nothing here needs provider credentials.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timedelta
from typing import TextIO
from urllib.parse import urlsplit

from bucketscribe.domain.job import Job, JobState, StreamMetrics
from bucketscribe.ports.job_store import JobStore
from bucketscribe.domain.clock import utc_now
from bucketscribe.pipeline.status import JobView
from bucketscribe.cli.stream_text import delay_text, factor_text

_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class AdminUsageError(ValueError):
    """An argument the commands cannot use (one line for the user, exit code 2)."""


def parse_since(text: str, now: datetime) -> datetime:
    """``2h``, ``30m``, ``3d`` (ago) or an ISO time (``2026-11-20T09:00``, UTC if no zone)."""
    relative = _RELATIVE.match(text.strip())
    if relative:
        return now - timedelta(**{_UNITS[relative[2]]: int(relative[1])})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise AdminUsageError(f"--since {text!r}: give an age like 2h, 30m, 3d, or an ISO time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)


def parse_upload(text: str) -> tuple[str, str] | None:
    """``s3://bucket/key`` or ``obs://bucket/key`` → (bucket, key); ``None`` for anything else."""
    parts = urlsplit(text)
    if parts.scheme not in ("s3", "obs") or not parts.netloc or len(parts.path) < 2:
        return None
    return parts.netloc, text.split("/", 3)[3]


def _stream_text(stream: StreamMetrics) -> str:
    factor = stream.realtime_factor
    return (
        f"first package {delay_text(stream.first_package_ms)}, "
        f"last package {delay_text(stream.last_package_ms)}, "
        f"{stream.audio_ms / 1000:.1f} s of audio in {stream.elapsed_ms / 1000:.1f} s"
        + (f" (real-time factor {factor_text(factor)})" if factor is not None else "")
    )


def _age(moment: datetime, now: datetime) -> str:
    seconds = max(0, int((now - moment).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def job_line(job: Job, now: datetime) -> str:
    error = f"  {job.error.code}: {job.error.message}" if job.error and job.state is not JobState.DONE else ""
    if job.superseded_by:
        error = f"  replaced by a later upload of the key (job {job.superseded_by}); nothing written"
    return (
        f"{job.state.value:<10} {len(job.attempts):>2} {_age(job.updated_at, now):>5}  "
        f"{job.id}  s3://{job.source.bucket}/{job.source.key}{error}"
    )


def list_jobs(args: argparse.Namespace, jobs: JobStore, out: TextIO) -> int:
    now = utc_now()
    state = JobState(args.state) if args.state else None
    since = parse_since(args.since, now) if args.since else None
    found = jobs.listing(state=state, since=since, key_prefix=args.prefix, limit=args.limit)
    if args.json:
        for job in found:
            out.write(JobView.of(job).model_dump_json() + "\n")
        return 0
    if not found:
        out.write("no jobs match\n")
        return 0
    out.write(f"{'STATE':<10} {'AT':>2} {'AGE':>5}  {'JOB ID':<32}  UPLOAD  [ERROR]\n")
    for job in found:
        out.write(job_line(job, now) + "\n")
    return 0


def show_status(args: argparse.Namespace, jobs: JobStore, out: TextIO) -> int:
    upload = parse_upload(args.target)
    if upload is not None:
        found = jobs.for_source(*upload, limit=10)
        job = jobs.get(found[0].id) if found else None
        earlier = [j.id for j in found[1:]]
    elif re.fullmatch(r"[0-9a-f]{32}", args.target):
        job, earlier = jobs.get(args.target), []
    else:
        raise AdminUsageError(
            f"{args.target!r}: give s3://BUCKET/KEY, obs://BUCKET/KEY or a 32-character job id"
        )
    if job is None:
        sys.stderr.write(f"bucketscribe: no job for {args.target}\n")
        return 1
    view = JobView.of(job)
    if args.json:
        out.write(json.dumps({"latest": json.loads(view.model_dump_json()), "earlier": earlier}) + "\n")
        return 0
    now = utc_now()
    out.write(job_line(job, now) + "\n")
    for attempt in view.attempts:
        task = f" task {attempt.provider_task_id}" if attempt.provider_task_id else ""
        why = f" — {attempt.error.code}: {attempt.error.message}" if attempt.error else ""
        out.write(f"  attempt {attempt.number}: {attempt.state.value}{task} ({attempt.reason}){why}\n")
        if attempt.stream is not None:
            out.write(f"    stream: {_stream_text(attempt.stream)}\n")
    for key in view.outputs:
        out.write(f"  output  s3://{view.bucket}/{key}\n")
    if view.next_check_at and not job.state.is_final:
        out.write(f"  next check in {_age(now, view.next_check_at)}\n")
    if earlier:
        out.write(f"  earlier uploads of this key: {', '.join(earlier)}\n")
    return 0


def redrive(args: argparse.Namespace, jobs: JobStore, out: TextIO) -> int:
    from bucketscribe.pipeline.redrive import RedriveOutcome, redrive_job

    now = utc_now()
    if args.failed:
        since = parse_since(args.since, now) if args.since else None
        failed = jobs.listing(state=JobState.FAILED, since=since, key_prefix=None, limit=args.limit)
        targets = [job.id for job in failed]
    else:
        targets = args.job_ids
    if not targets:
        raise AdminUsageError("name job ids to re-drive, or pass --failed")
    refused = 0
    for job_id in targets:
        result = redrive_job(job_id, jobs, now=now, reason=args.reason, include_done=args.include_done)
        refused += result.outcome is not RedriveOutcome.REDRIVEN
        out.write(f"{result.outcome.value:<12} {job_id}  {result.detail}\n")
    return 1 if refused else 0
