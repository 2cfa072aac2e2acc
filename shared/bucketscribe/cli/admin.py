"""The operator's commands on the job store: ``jobs``, ``status``, ``redrive``, ``usage``.

They find the job store as ``job_stores.py`` says: a Serverless deploy by its stage (its stack's
outputs), the functions' own settings where they are set, or the ``bucketscribe up`` running on
this machine with nothing exported. What they show is what the pipeline sees. A re-drive only
marks jobs: the reconciler's next run submits them, so nothing here needs provider credentials.
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

from bucketscribe.cli.arguments import NewCommand, port_number, positive_int, positive_seconds
from bucketscribe.cli.exit_codes import BadInput, ExitCode
from bucketscribe.cli.stream_text import delay_text, factor_text
from bucketscribe.clouds.registry import upload_schemes
from bucketscribe.domain.clock import utc_now
from bucketscribe.domain.job import Job, JobState, StreamMetrics
from bucketscribe.domain.job_events import DeliveryState, EventDelivery
from bucketscribe.pipeline.status import JobView
from bucketscribe.ports.job_store import JobStore

AdminCommand = Callable[[argparse.Namespace, JobStore, TextIO], int]

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


def _listing(args: argparse.Namespace, jobs: JobStore) -> list[Job]:
    state = JobState(args.state) if args.state else None
    since = parse_since(args.since, utc_now()) if args.since else None
    return jobs.listing(state=state, since=since, key_prefix=args.prefix, limit=args.limit)


def list_jobs(args: argparse.Namespace, jobs: JobStore, out: TextIO) -> int:
    if getattr(args, "watch", False):
        from bucketscribe.cli.follow import watch_jobs

        activity = getattr(args, "activity", None)
        return watch_jobs(jobs, args, lambda: _listing(args, jobs), out, activity=activity)
    now = utc_now()
    found = _listing(args, jobs)
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


def _status_target(target: str) -> tuple[tuple[str, str] | None, str | None]:
    """(bucket, key) of an upload, or a job id."""
    upload = parse_upload(target)
    if upload is not None:
        return upload, None
    if re.fullmatch(r"[0-9a-f]{32}", target):
        return None, target
    raise AdminUsageError(f"{target!r}: give {_upload_forms()} or a 32-character job id")


def show_status(args: argparse.Namespace, jobs: JobStore, out: TextIO) -> int:
    upload, job_id = _status_target(args.target)
    if getattr(args, "wait", False):
        return _wait_for(args, jobs, out, upload, job_id)
    earlier: list[str] = []
    if upload is not None:
        found = jobs.for_source(*upload, limit=10)
        job = jobs.get(found[0].id) if found else None
        earlier = [j.id for j in found[1:]]
    else:
        job = jobs.get(job_id) if job_id else None
    if job is None:
        sys.stderr.write(f"bucketscribe: no job for {args.target}\n")
        return 1
    _write_status(args, job, earlier, out)
    return 0


def _earlier(jobs: JobStore, upload: tuple[str, str] | None, job: Job) -> list[str]:
    """The jobs of earlier uploads of the same key (newest first)."""
    if upload is None:
        return []
    return [j.id for j in jobs.for_source(*upload, limit=10) if j.id != job.id]


def _wait_for(
    args: argparse.Namespace,
    jobs: JobStore,
    out: TextIO,
    upload: tuple[str, str] | None,
    job_id: str | None,
) -> int:
    """``status --wait``: 0 once DONE, 1 once FAILED (or replaced by a later upload) or when
    ``--timeout`` passes first; the status is printed either way."""
    from bucketscribe.cli.follow import wait_until_final

    label = args.target if upload is None else args.target.rsplit("/", 1)[-1]
    job = wait_until_final(
        jobs,
        upload=upload,
        job_id=job_id,
        label=label,
        timeout_s=args.timeout,
        activity=getattr(args, "activity", None),
    )
    if job is None:
        sys.stderr.write(
            f"bucketscribe: error: no job for {args.target} after --timeout {args.timeout:g} s\n"
        )
        return ExitCode.SOME_FAILED
    _write_status(args, job, _earlier(jobs, upload, job), out)
    if not job.state.is_final:
        sys.stderr.write(
            f"bucketscribe: error: {args.target}: still {job.state.value} "
            f"after --timeout {args.timeout:g} s\n"
        )
        return ExitCode.SOME_FAILED
    return ExitCode.OK if job.state is JobState.DONE else ExitCode.SOME_FAILED


def _write_status(args: argparse.Namespace, job: Job, earlier: list[str], out: TextIO) -> None:
    view = JobView.of(job)
    if args.json:
        out.write(json.dumps({"latest": json.loads(view.model_dump_json()), "earlier": earlier}) + "\n")
        out.flush()
        return
    now = utc_now()
    out.write(job_line(job, now, args.scheme) + "\n")
    if view.waiting_since is not None and not job.state.is_final:
        why = f" — {view.error.code}" if view.error else ""
        out.write(
            f"  waiting for {view.provider}'s capacity for {_age(view.waiting_since, now)} "
            f"({view.capacity_waits} times turned away){why}\n"
        )
    elif view.capacity_waits:
        out.write(f"  waited for {view.provider}'s capacity ({view.capacity_waits} times turned away)\n")
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
    out.flush()


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


def show_usage(args: argparse.Namespace, jobs: JobStore, out: TextIO) -> int:
    from bucketscribe.cli.usage import render_text, speech_prices, usage_report

    since = parse_since(args.since, utc_now()) if args.since else None
    found = jobs.listing(state=None, since=since, key_prefix=None, limit=args.limit)
    if len(found) >= args.limit:
        sys.stderr.write(
            f"bucketscribe: warning: only the {args.limit} most recently changed jobs were read; "
            "older ones are not counted (raise --limit, or narrow --since)\n"
        )
    report = usage_report(found, since=since, by=args.by, prices=speech_prices())
    out.write(report.model_dump_json() + "\n" if args.json else render_text(report, args.where))
    return 0


# ----- the commands ------------------------------------------------------------------------------


def register(command: NewCommand) -> None:
    _add_jobs(command)
    _add_status(command)
    _add_redrive(command)
    _add_usage(command)


def _job_admin(handler: AdminCommand) -> Callable[[argparse.Namespace], int]:
    """Run ``handler`` on the job store the options and settings name (``job_stores.py``)."""

    def run(args: argparse.Namespace) -> int:
        from bucketscribe.cli.job_stores import (
            Choice,
            JobStoreUnreachable,
            NoJobStore,
            find_job_store,
            one_line_reason,
        )

        if args.region and not (args.stage or args.stack):
            raise BadInput("--region", "goes with --stage or --stack (a deploy on AWS)")
        if args.local is not None and (args.stage or args.stack):
            raise BadInput("--local", "names a local stack; --stage and --stack a deploy: give one")
        choice = Choice(stage=args.stage, stack=args.stack, region=args.region, local_port=args.local)
        try:
            found = find_job_store(choice)
        except NoJobStore as exc:
            sys.stderr.write(f"bucketscribe: error: {exc}\n")
            return ExitCode.USAGE
        except JobStoreUnreachable as exc:
            sys.stderr.write(f"bucketscribe: error: {exc}\n")
            return ExitCode.SOME_FAILED
        args.scheme = found.scheme  # objects are shown as that cloud writes them
        args.activity = found.activity
        args.where = found.where
        try:
            return handler(args, found.store, sys.stdout)
        except AdminUsageError as exc:
            raise BadInput("usage", str(exc)) from None
        except Exception as exc:  # the store is unreachable or refuses us: say so in one line
            sys.stderr.write(f"bucketscribe: error: cannot read {found.where}: {one_line_reason(exc)}\n")
            return ExitCode.SOME_FAILED

    return run


_SETTINGS_NOTE = (
    "It reads the job store the functions use: with nothing set, that of the `bucketscribe up` running "
    "on this machine; --stage STAGE for the AWS deploy (its CloudFormation outputs); or the functions' "
    "own settings (BUCKETSCRIBE_CLOUD, BUCKETSCRIBE_JOBS_TABLE, that cloud's endpoint and credentials)."
)


def _store_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group(
        "which job store",
        "Default: the functions' BUCKETSCRIBE_* settings where set, else the `bucketscribe up`\n"
        "running on this machine (found with nothing exported).",
    )
    where.add_argument(
        "--stage",
        help="the AWS deploy of this Serverless stage: stack bucketscribe-STAGE, whose outputs name the job "
        "table, read with the shell's AWS credentials (default: no deploy)",
    )
    where.add_argument(
        "--stack", help="the AWS deploy's CloudFormation stack, by name (default: bucketscribe-STAGE)"
    )
    where.add_argument(
        "--region", help="with --stage or --stack: the deploy's AWS region (default: the shell's)"
    )
    where.add_argument(
        "--local",
        type=port_number,
        metavar="PORT",
        help="the `bucketscribe up` whose S3 endpoint is on PORT, when several run (default: the one)",
    )


def _add_jobs(command: NewCommand) -> None:
    jobs = command(
        "jobs",
        "list jobs from the job store (state, attempts, age, error), or --watch them",
        "List jobs, most recently changed first: state, attempts made, age, job id, upload, and for "
        "failed jobs the code and reason. With --watch, follow them until Ctrl-C: a board redrawn in "
        "place on a terminal (plain lines otherwise), each job's stage as `transcribe` shows it. "
        + _SETTINGS_NOTE,
        "examples:\n  bucketscribe jobs --state FAILED --since 2h\n"
        "  bucketscribe jobs --prefix recordings/incoming/calls/ --json\n"
        "  bucketscribe jobs --watch --since 1h --stage prod\n",
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
    jobs.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per job (the status API's view); with --watch, one per change",
    )
    jobs.add_argument(
        "--watch",
        action="store_true",
        help="keep following the listed jobs (and new ones) until Ctrl-C, which exits 0",
    )
    _store_options(jobs)
    jobs.set_defaults(run=_job_admin(list_jobs), interrupt="graceful")


def _add_status(command: NewCommand) -> None:
    status = command(
        "status",
        "where one upload or job stands, with its attempts; --wait for it to finish",
        f"Show the latest job for an upload ({_upload_forms()}, as uploaded; no ETag "
        "needed) or for a job id: state, each attempt and its provider task, outputs, next check. "
        "With --wait, wait until it is DONE (exit 0) or FAILED (exit 1), showing its progress on "
        "stderr, then show it. " + _SETTINGS_NOTE,
        'examples:\n  bucketscribe status "s3://recordings/incoming/calls/2026-11-20 agent+42.wav"\n'
        "  bucketscribe status 3f2a9c0e4b1d4e8f9a6b7c5d2e1f0a9b --json\n"
        "  bucketscribe status --wait s3://recordings/incoming/hello_en.wav --timeout 600\n",
    )
    status.add_argument("target", help=f"{_upload_forms()} or a job id")
    status.add_argument("--json", action="store_true", help="the status API's JSON")
    status.add_argument(
        "--wait",
        action="store_true",
        help="wait until the job is DONE (exit 0) or FAILED (exit 1); an upload with no job yet is "
        "waited for too",
    )
    status.add_argument(
        "--timeout",
        type=positive_seconds,
        metavar="SECONDS",
        help="with --wait: give up after this many seconds, exit 1 (default: wait as long as it takes)",
    )
    _store_options(status)
    status.set_defaults(run=_job_admin(show_status), interrupt="prompt")


def _add_redrive(command: NewCommand) -> None:
    parser = command(
        "redrive",
        "run finished (failed) jobs again as a new attempt",
        "Send failed jobs back for a new attempt, linked to the earlier ones in the job's record; the "
        "reconciler's next run (every 5 minutes when deployed) submits them. A job still in flight is "
        "never re-driven (it would be paid for twice); a DONE job only with --include-done. Exit code 1 "
        "when any job was not re-driven. " + _SETTINGS_NOTE,
        "examples:\n  bucketscribe redrive 3f2a9c0e4b1d4e8f9a6b7c5d2e1f0a9b\n"
        '  bucketscribe redrive --failed --since 6h --reason "provider quota raised"\n',
    )
    parser.add_argument("job_ids", nargs="*", metavar="JOB_ID", help="the jobs to run again")
    parser.add_argument(
        "--failed", action="store_true", help="every FAILED job (with --since: changed since)"
    )
    parser.add_argument(
        "--since", help="with --failed: an age (30m, 2h, 3d) or an ISO time (default: any time)"
    )
    parser.add_argument("--limit", type=positive_int, default=1000, help="with --failed: at most this many")
    parser.add_argument("--include-done", action="store_true", help="also run DONE jobs again")
    parser.add_argument("--reason", default="operator re-drive", help="recorded on the new attempt")
    _store_options(parser)
    parser.set_defaults(run=_job_admin(redrive))


def _add_usage(command: NewCommand) -> None:
    from bucketscribe.cli.usage import GROUPINGS

    usage = command(
        "usage",
        "audio minutes, files, failures, provider jobs and estimated cost, from the job records",
        "Count what the pipeline did from its job records: files (uploads) and how they ended, their "
        "audio minutes, the provider jobs paid for (duplicates: tasks beyond a job's first) and the "
        "estimated cost at the speech services' list prices (the project's price table; not a bill). "
        + _SETTINGS_NOTE,
        "examples:\n  bucketscribe usage --since 7d --by provider\n"
        "  bucketscribe usage --since 2026-12-01 --by day --json --stage prod\n",
    )
    usage.add_argument(
        "--since",
        help="only jobs created since: an age (30m, 2h, 3d) or an ISO time (default: every job kept)",
    )
    usage.add_argument(
        "--by", choices=GROUPINGS, help="a row per profile, provider or day (UTC) (default: totals only)"
    )
    usage.add_argument(
        "--json", action="store_true", help="one JSON object: every figure, per group and in total"
    )
    usage.add_argument(
        "--limit",
        type=positive_int,
        default=100_000,
        help="read at most this many job records (most recently changed first)",
    )
    _store_options(usage)
    usage.set_defaults(run=_job_admin(show_usage))
