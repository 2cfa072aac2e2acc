"""Submit entry point: an SQS batch of bucket notifications → submitted transcription jobs.

The whole batch goes to the use case at once, so uploads that share a profile can ride in one
provider task (a provider may take up to 100 files per task). Each message is read on its own: an
unreadable one fails alone, a bad record inside a message is logged and skipped, and a message
is handed back to SQS only when one of its uploads got nothing durable (RETRY). Every other
outcome — submitted, deferred to the reconciler, rejected with a reason — is final for the queue.

The answer is SQS's partial batch response (``ReportBatchItemFailures``), built here: the outcomes
are known per message before it is written, and Powertools' batch processor, which would only
re-walk them, added ~35 ms to every cold start.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from bucketscribe.clouds.aws.events import object_refs_from_message_body
from bucketscribe.clouds.aws.upload_queue import check_upload_queue
from bucketscribe.domain.notification import EventShapeError, Notification
from bucketscribe.entrypoints.invocation_time import out_of_time, time_left
from bucketscribe.entrypoints.uploads import (
    SUBMIT_MARGIN_MS,
    SubmitLater,
    count_outcomes,
    raise_for_retry,
    report_unreadable_records,
)
from bucketscribe.observability import count, logger, metrics
from bucketscribe.pipeline.submit import UploadResult, submit_uploads
from bucketscribe.wiring import environment_ports, environment_settings


@cache
def upload_queue_checked() -> None:
    """The claim lease against the upload queue's real visibility timeout, once per cold start."""
    check_upload_queue(environment_settings())


def _read(record: dict[str, Any]) -> Notification | EventShapeError:
    try:
        notification = object_refs_from_message_body(record.get("body") or "")
    except EventShapeError as exc:
        return exc
    report_unreadable_records(notification, message_id=record.get("messageId"))
    return notification


def _delivered_again(message_id: str, outcome: list[UploadResult] | EventShapeError) -> bool:
    """Whether SQS must deliver this message again (it goes to the dead-letter queue after the
    queue's maxReceiveCount, and the reconciler settles it there)."""
    if isinstance(outcome, EventShapeError):
        logger.error("Unreadable notification", extra={"message_id": message_id, "reason": str(outcome)})
        count("NotificationsUnreadable")
        return True
    try:
        raise_for_retry(outcome)
    except SubmitLater as exc:
        logger.warning(
            "Notification handed back to the queue", extra={"message_id": message_id, "reason": str(exc)}
        )
        return True
    return False


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    count("NotificationsReceived", len(records))
    read = {record["messageId"]: _read(record) for record in records}
    uploads = [
        (message_id, ref)
        for message_id, notification in read.items()
        if isinstance(notification, Notification)
        for ref in notification.refs
    ]
    upload_queue_checked()  # a lease that outlives the queue's visibility timeout: refuse to run
    results = submit_uploads(
        [ref for _, ref in uploads],
        environment_ports(),
        out_of_time=out_of_time(context, SUBMIT_MARGIN_MS),
        time_left=time_left(context, SUBMIT_MARGIN_MS),
    )
    outcomes: dict[str, list[UploadResult] | EventShapeError] = {
        message_id: [] if isinstance(notification, Notification) else notification
        for message_id, notification in read.items()
    }
    for (message_id, _), result in zip(uploads, results, strict=True):
        per_message = outcomes[message_id]
        assert isinstance(per_message, list)
        per_message.append(result)
    count_outcomes(results)
    failures = [
        message_id for message_id, outcome in outcomes.items() if _delivered_again(message_id, outcome)
    ]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}
