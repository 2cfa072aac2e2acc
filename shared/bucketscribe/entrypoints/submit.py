"""Submit entry point: an SQS batch of bucket notifications → submitted transcription jobs.

One bad record never sinks the batch: Powertools batch processing reports
only the failed messages back to SQS, which redelivers them (and finally
moves them to the DLQ).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from bucketscribe.events import object_refs_from_message_body
from bucketscribe.pipeline.ports import PipelinePorts
from bucketscribe.pipeline.submit import UploadOutcome
from bucketscribe.settings import Settings
from bucketscribe.upload_guard import GuardedSubmitter, UploadSubmitter, plain_submitter
from bucketscribe.wiring import build_ports

logger = Logger(service="bucketscribe")
metrics = Metrics(namespace="bucketscribe", service="bucketscribe")
processor = BatchProcessor(event_type=EventType.SQS)


@cache
def _settings() -> Settings:
    return Settings()


@cache
def _ports() -> PipelinePorts:
    return build_ports(_settings())


@cache
def _submitter() -> UploadSubmitter | GuardedSubmitter:
    settings = _settings()
    if not settings.idempotency_table:
        logger.warning("BUCKETSCRIBE_IDEMPOTENCY_TABLE is not set: concurrent duplicate events are not locked")
        return plain_submitter(_ports())
    import boto3

    client = boto3.client("dynamodb", endpoint_url=settings.aws_endpoint_url)
    return GuardedSubmitter(_ports(), table_name=settings.idempotency_table, dynamodb_client=client)


def _record_handler(record: SQSRecord, submit: UploadSubmitter) -> None:
    metrics.add_metric(name="NotificationsReceived", unit=MetricUnit.Count, value=1)
    for upload in object_refs_from_message_body(record.body):
        result = submit(upload)
        metrics.add_metric(name=f"Uploads{result.outcome.value.title()}", unit=MetricUnit.Count, value=1)
        if result.outcome is UploadOutcome.REJECTED:
            metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    submit = _submitter()
    if isinstance(submit, GuardedSubmitter):
        submit.register_lambda_context(context)
    return process_partial_response(
        event=event,
        record_handler=lambda record: _record_handler(record, submit),
        processor=processor,
        context=context,
    )
