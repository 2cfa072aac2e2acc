"""Submit entry point: an SQS batch of bucket notifications → submitted transcription jobs.

The whole batch goes to the use case at once, so uploads that share a profile
can ride in one provider task (DashScope takes up to 100 files per task). One
bad record never sinks the batch: Powertools batch processing reports only the
failed messages (unreadable, or whose provider was busy) back to SQS, which
redelivers them and finally moves them to the DLQ.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from bucketscribe.events import EventShapeError, object_refs_from_message_body
from bucketscribe.model import ObjectRef
from bucketscribe.pipeline.submit import UploadOutcome, UploadResult, submit_uploads
from bucketscribe.wiring import environment_ports

logger = Logger(service="bucketscribe")
metrics = Metrics(namespace="bucketscribe", service="bucketscribe")
processor = BatchProcessor(event_type=EventType.SQS)
SUBMIT_MARGIN_MS = 60_000


class SubmitLater(RuntimeError):
    """The provider is busy or unreachable; the message must be delivered again."""


def _uploads(record: dict[str, Any]) -> list[ObjectRef] | EventShapeError:
    try:
        return object_refs_from_message_body(record.get("body") or "")
    except EventShapeError as exc:
        return exc


def _record_handler(record: SQSRecord, results: dict[str, list[UploadResult] | EventShapeError]) -> None:
    outcome = results[record.message_id]
    if isinstance(outcome, EventShapeError):
        logger.error(
            "Unreadable notification", extra={"message_id": record.message_id, "reason": str(outcome)}
        )
        raise outcome
    retry = [r for r in outcome if r.outcome is UploadOutcome.RETRY]
    if retry:
        raise SubmitLater("; ".join(f"{r.source.key}: {r.reason}" for r in retry))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    metrics.add_metric(name="NotificationsReceived", unit=MetricUnit.Count, value=len(records))
    parsed = {record["messageId"]: _uploads(record) for record in records}
    uploads = [ref for refs in parsed.values() if not isinstance(refs, EventShapeError) for ref in refs]
    by_upload: dict[str, UploadResult] = {}
    # Stop accepting with a margin for submitting what was accepted; the rest is redelivered.
    out_of_time = lambda: context.get_remaining_time_in_millis() < SUBMIT_MARGIN_MS  # noqa: E731
    for result in submit_uploads(uploads, environment_ports(), out_of_time=out_of_time):
        by_upload[result.source.key] = result
        metrics.add_metric(name=f"Uploads{result.outcome.value.title()}", unit=MetricUnit.Count, value=1)
    results: dict[str, list[UploadResult] | EventShapeError] = {
        message_id: refs if isinstance(refs, EventShapeError) else [by_upload[ref.key] for ref in refs]
        for message_id, refs in parsed.items()
    }
    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event,
        record_handler=lambda record: _record_handler(record, results),
        processor=processor,
        context=context,
    )
    return response
