"""Reconcile entry point (a schedule): carry on every unfinished job, drain the dead letters."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from bucketscribe.entrypoints.invocation_time import out_of_time, time_left
from bucketscribe.observability import count, logger, measure, metrics, record_stream
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.wiring import environment_ports, environment_settings

RECONCILE_MARGIN_MS = 30_000


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
    return report.model_dump()
