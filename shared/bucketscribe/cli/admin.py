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
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TextIO
from urllib.parse import urlsplit

from bucketscribe.cli.arguments import NewCommand, positive_int
from bucketscribe.cli.exit_codes import BadInput, ExitCode
from bucketscribe.cli.stream_text import delay_text, factor_text
from bucketscribe.clouds.registry import upload_schemes
from bucketscribe.domain.clock import utc_now
from bucketscribe.domain.job import Job, JobState, StreamMetrics
from bucketscribe.domain.job_events import DeliveryState, EventDelivery
from bucketscribe.pipeline.status import JobView
from bucketscribe.ports.job_store import JobStore

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


def _upload_forms() -> str:
    """How an upload is written on each cloud this build knows (``s3://BUCKET/KEY``, …)."""
    return ", ".join(f"{scheme}://BUCKET/KEY" for scheme in upload_schemes())


def parse_upload(text: str) -> tuple[str, str] | None:
    """``<scheme>://bucket/key`` (a cloud's own scheme) → (bucket, key); ``None`` for anything else."""
    parts = urlsplit(text)
    if parts.scheme not in upload_schemes() or not parts.netloc or len(parts.path) < 2:
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


def _delivery_text(delivery: EventDelivery, now: datetime) -> str:
    """``webhook PENDING, 2 attempts, next in 4m: the receiver answered HTTP 500``."""
    tries = f"{delivery.attempts} attempt{'' if delivery.attempts == 1 else 's'}"
    text = f"{delivery.channel.value} {delivery.state.value}, {tries}"
    if delivery.state is DeliveryState.PENDING and delivery.next_attempt_at is not None:
        text += f", next in {_age(now, delivery.next_attempt_at)}"
    if delivery.state is not DeliveryState.DELIVERED and delivery.last_error:
        text += f": {delivery.last_error}"
    return text


def job_line(job: Job, now: datetime, scheme: str) -> str:
    error = f"  {job.error.code}: {job.error.message}" if job.error and job.state is not JobState.DONE else ""
    if job.superseded_by:
        error = f"  replaced by a later upload of the key (job {job.superseded_by}); nothing written"
    return (
        f"{job.state.value:<10} {len(job.attempts):>2} {_age(job.updated_at, now):>5}  "
        f"{job.id}  {scheme}://{job.source.bucket}/{job.source.key}{error}"
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
        out.write(job_line(job, now, args.scheme) + "\n")
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
        raise AdminUsageError(f"{args.target!r}: give {_upload_forms()} or a 32-character job id")
    if job is None:
        sys.stderr.write(f"bucketscribe: no job for {args.target}\n")
        return 1
    view = JobView.of(job)
    if args.json:
        out.write(json.dumps({"latest": json.loads(view.model_dump_json()), "earlier": earlier}) + "\n")
        return 0
    now = utc_now()
    out.write(job_line(job, now, args.scheme) + "\n")
    for attempt in view.attempts:
        task = f" task {attempt.provider_task_id}" if attempt.provider_task_id else ""
        why = f" — {attempt.error.code}: {attempt.error.message}" if attempt.error else ""
        out.write(f"  attempt {attempt.number}: {attempt.state.value}{task} ({attempt.reason}){why}\n")
        if attempt.stream is not None:
            out.write(f"    stream: {_stream_text(attempt.stream)}\n")
    for key in view.outputs:
        out.write(f"  output  {args.scheme}://{view.bucket}/{key}\n")
    for event in view.events:
        out.write(f"  event   {event.type.value} {event.id}\n")
        for delivery in event.deliveries:
            out.write(f"    {_delivery_text(delivery, now)}\n")
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


# ----- the commands ------------------------------------------------------------------------------


def register(command: NewCommand) -> None:
    _add_jobs(command)
    _add_status(command)
    _add_redrive(command)


def _job_admin(command: str) -> Callable[[argparse.Namespace], int]:
    """``jobs`` / ``status`` / ``redrive``: the job store named by the functions' own settings."""

    def run(args: argparse.Namespace) -> int:
        from bucketscribe.clouds.registry import cloud
        from bucketscribe.wiring import environment_secrets, environment_settings

        try:
            settings = environment_settings()
        except ValueError as exc:
            raise BadInput("settings", str(exc).splitlines()[-1].strip()) from None
        handler: Callable[..., int] = globals()[command]
        try:
            deployed_on = cloud(settings.cloud)
            args.scheme = deployed_on.uri_scheme  # objects are shown as that cloud writes them
            store = deployed_on.job_store(settings, environment_secrets())
            return handler(args, store, sys.stdout)
        except AdminUsageError as exc:
            raise BadInput("usage", str(exc)) from None
        except Exception as exc:  # the store is unreachable or refuses us: say so in one line
            sys.stderr.write(
                f"bucketscribe: error: cannot read the job store {settings.jobs_table!r}: "
                f"{type(exc).__name__}: {exc}\n(set BUCKETSCRIBE_CLOUD, BUCKETSCRIBE_JOBS_TABLE and that "
                "cloud's endpoint and credentials as the functions have them; `bucketscribe up` prints "
                "them)\n"
            )
            return ExitCode.SOME_FAILED

    return run


_SETTINGS_NOTE = (
    "It reads the job store the functions use, from the same settings (BUCKETSCRIBE_CLOUD, "
    "BUCKETSCRIBE_JOBS_TABLE, that cloud's endpoint and credentials): `bucketscribe up` prints them for "
    "the local stack."
)


def _add_jobs(command: NewCommand) -> None:
    jobs = command(
        "jobs",
        "list jobs from the job store (state, attempts, age, error)",
        "List jobs, most recently changed first: state, attempts made, age, job id, upload, and for "
        "failed jobs the code and reason. " + _SETTINGS_NOTE,
        "examples:\n  bucketscribe jobs --state FAILED --since 2h\n"
        "  bucketscribe jobs --prefix recordings/incoming/calls/ --json\n",
    )
    jobs.add_argument(
        "--state",
        choices=["ACCEPTED", "SUBMITTING", "SUBMITTED", "DONE", "FAILED"],
        help="only jobs in this state (default: every state)",
    )
    jobs.add_argument("--prefix", help="only uploads whose BUCKET/KEY starts with this (default: all)")
    jobs.add_argument(
        "--since", help="only jobs changed since: an age (30m, 2h, 3d) or an ISO time (default: any time)"
    )
    jobs.add_argument("--limit", type=positive_int, default=50, help="at most this many jobs")
    jobs.add_argument("--json", action="store_true", help="one JSON object per job (the status API's view)")
    jobs.set_defaults(run=_job_admin("list_jobs"))


def _add_status(command: NewCommand) -> None:
    status = command(
        "status",
        "where one upload or job stands, with its attempts",
        f"Show the latest job for an upload ({_upload_forms()}, as uploaded; no ETag "
        "needed) or for a job id: state, each attempt and its provider task, outputs, next check. "
        + _SETTINGS_NOTE,
        'examples:\n  bucketscribe status "s3://recordings/incoming/calls/2026-11-20 agent+42.wav"\n'
        "  bucketscribe status 3f2a9c0e4b1d4e8f9a6b7c5d2e1f0a9b --json\n",
    )
    status.add_argument("target", help=f"{_upload_forms()} or a job id")
    status.add_argument("--json", action="store_true", help="the status API's JSON")
    status.set_defaults(run=_job_admin("show_status"))


def _add_redrive(command: NewCommand) -> None:
    redrive = command(
        "redrive",
        "run finished (failed) jobs again as a new attempt",
        "Send failed jobs back for a new attempt, linked to the earlier ones in the job's record; the "
        "reconciler's next run (every 5 minutes when deployed) submits them. A job still in flight is "
        "never re-driven (it would be paid for twice); a DONE job only with --include-done. Exit code 1 "
        "when any job was not re-driven. " + _SETTINGS_NOTE,
        "examples:\n  bucketscribe redrive 3f2a9c0e4b1d4e8f9a6b7c5d2e1f0a9b\n"
        '  bucketscribe redrive --failed --since 6h --reason "provider quota raised"\n',
    )
    redrive.add_argument("job_ids", nargs="*", metavar="JOB_ID", help="the jobs to run again")
    redrive.add_argument(
        "--failed", action="store_true", help="every FAILED job (with --since: changed since)"
    )
    redrive.add_argument(
        "--since", help="with --failed: an age (30m, 2h, 3d) or an ISO time (default: any time)"
    )
    redrive.add_argument("--limit", type=positive_int, default=1000, help="with --failed: at most this many")
    redrive.add_argument("--include-done", action="store_true", help="also run DONE jobs again")
    redrive.add_argument("--reason", default="operator re-drive", help="recorded on the new attempt")
    redrive.set_defaults(run=_job_admin("redrive"))
