"""FunctionGraph ``submit``: the OBS trigger's event → submitted transcription jobs.

FunctionGraph calls an OBS-triggered function asynchronously with the bucket's event, with no
queue in between. A record that names no object is logged and skipped. When an upload got
nothing durable (RETRY) — or the event cannot be read at all — the invocation fails, so
FunctionGraph retries it and finally writes it to the failure destination, which the reconciler
settles; nothing is swallowed. Every other outcome is final for the trigger.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from bucketscribe.clouds.huawei.events import object_refs_from_trigger
from bucketscribe.clouds.huawei.functiongraph.context import functiongraph_handler
from bucketscribe.domain.notification import EventShapeError
from bucketscribe.entrypoints.invocation_time import out_of_time, time_left
from bucketscribe.entrypoints.uploads import (
    SUBMIT_MARGIN_MS,
    count_outcomes,
    raise_for_retry,
    report_unreadable_records,
)
from bucketscribe.observability import count, logger
from bucketscribe.pipeline.submit import submit_uploads
from bucketscribe.wiring import environment_ports


@functiongraph_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    count("NotificationsReceived")
    try:
        if not isinstance(event, dict):
            raise EventShapeError("the event is not a JSON object")
        notification = object_refs_from_trigger(event)
    except EventShapeError as exc:
        logger.error("Unreadable upload event", extra={"reason": str(exc)})
        count("NotificationsUnreadable")
        raise
    report_unreadable_records(notification, request_id=context.aws_request_id)
    results = submit_uploads(
        notification.refs,
        environment_ports(),
        out_of_time=out_of_time(context, SUBMIT_MARGIN_MS),
        time_left=time_left(context, SUBMIT_MARGIN_MS),
    )
    count_outcomes(results)
    raise_for_retry(results)
    return {"uploads": {result.source.key: result.outcome.value for result in results}}
