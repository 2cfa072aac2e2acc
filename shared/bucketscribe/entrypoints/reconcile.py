"""Reconcile entry point (a schedule): carry on every unfinished job, drain the dead letters."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext

from bucketscribe.domain.clock import utc_now
from bucketscribe.entrypoints.invocation_time import out_of_time, time_left
from bucketscribe.observability import count, logger, measure, metrics, record_stream
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.ports.job_store import JobStore
from bucketscribe.wiring import environment_ports, environment_settings

RECONCILE_MARGIN_MS = 30_000
# The unfinished jobs read to find the oldest: every one in a healthy pipeline (uploads finish in
# minutes); in a backlog larger than this, the oldest of those next due, which is still a lower bound.
OLDEST_UNFINISHED_READ = 1000
# Far enough ahead that every unfinished job is "due" by then: the index then lists them all.
_EVER = timedelta(days=365 * 100)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return reconcile_and_count(context)


def reconcile_and_count(context: LambdaContext) -> dict[str, Any]:
    """One reconcile run within the invocation's time, its outcome counted (every platform's)."""
    report = reconcile(
        environment_ports(),
        limit=environment_settings().reconcile_batch,
        # Leave a margin to record what was done; the rest stays due for the next run.
        out_of_time=out_of_time(context, RECONCILE_MARGIN_MS),
        time_left=time_left(context, RECONCILE_MARGIN_MS),
    )
    count("ReconcileJobsDue", report.due)
    count("JobsCompleted", report.finished)
    if report.speech_without_text:
        count("SpeechWithoutText", report.speech_without_text)
    count("JobsFailed", report.failed)
    count("AttemptsResolved", report.resolved)
    count("AttemptsAbandoned", report.abandoned)
    count("DeadLettersSettled", report.dead_letters)
    if report.audio_ms:
        measure("AudioSeconds", report.audio_ms / 1000, MetricUnit.Seconds)
    for stream in report.streams:
        record_stream(stream)
    if not is_metrics_disabled():  # one more query per run, only where the figure is published
        _record_oldest_unfinished(environment_ports().jobs, utc_now())
    return report.model_dump()


def oldest_unfinished_age_s(jobs: JobStore, now: datetime) -> float:
    """How long the oldest unfinished job has been trying (since its upload or its re-drive); 0
    when every job is finished. On-call's first question: is anything stuck?"""
    unfinished = jobs.due(now + _EVER, limit=OLDEST_UNFINISHED_READ)
    oldest = min((job.active_since for job in unfinished), default=now)
    return max(0.0, (now - oldest).total_seconds())


def _record_oldest_unfinished(jobs: JobStore, now: datetime) -> None:
    try:
        age = oldest_unfinished_age_s(jobs, now)
    except Exception:  # a figure for the dashboard never fails the run that carried the jobs on
        logger.warning("Could not read the oldest unfinished job's age", exc_info=True)
        return
    measure("OldestUnfinishedJobAge", age, MetricUnit.Seconds)
