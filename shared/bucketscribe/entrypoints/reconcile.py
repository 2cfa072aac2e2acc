"""Reconcile entry point (a schedule): finish jobs whose callback or push never came."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.wiring import environment_ports, environment_settings

logger = Logger(service="bucketscribe")
RECONCILE_MARGIN_MS = 30_000
metrics = Metrics(namespace="bucketscribe", service="bucketscribe")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = reconcile(
        environment_ports(),
        limit=environment_settings().reconcile_batch,
        # Leave a margin to record what was done; the rest stays due for the next run.
        out_of_time=lambda: context.get_remaining_time_in_millis() < RECONCILE_MARGIN_MS,
    )
    metrics.add_metric(name="ReconcileJobsDue", unit=MetricUnit.Count, value=report.due)
    metrics.add_metric(name="JobsCompleted", unit=MetricUnit.Count, value=report.finished)
    metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=report.failed)
    if report.audio_ms:
        metrics.add_metric(name="AudioSeconds", unit=MetricUnit.Seconds, value=report.audio_ms / 1000)
    return report.model_dump()
