"""Callback entry point: the HTTP API (API Gateway REST → Powertools event handler).

- ``POST /callbacks/sis/{job_id}?token=…`` SIS says a job finished; we re-fetch and finish it.
- ``POST /callbacks/dashscope`` the EventBridge ``AsyncTaskFinish`` push (connection header token,
  timestamp within 60 s); we fetch the task and finish every job in it, once per task.
- ``GET /jobs/{job_id}`` where a job stands (``Authorization: Bearer <status token>``).
"""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from bucketscribe.callback_auth import push_refusal
from bucketscribe.model import utc_now
from bucketscribe.pipeline.complete import (
    Completion,
    CompletionOutcome,
    UnknownTask,
    complete_sis_callback,
    complete_task,
)
from bucketscribe.pipeline.status import job_status
from bucketscribe.providers.base import ProviderError
from bucketscribe.providers.dashscope_push import PushRejected, TaskFinishedEvent
from bucketscribe.secret_store import resolve_secret
from bucketscribe.wiring import environment_ports, environment_settings

logger = Logger(service="bucketscribe")
metrics = Metrics(namespace="bucketscribe", service="bucketscribe")
app = APIGatewayRestResolver()


def _status_token() -> str:
    # Not cached here: the secret store caches for five minutes, so a rotated token takes effect.
    settings = environment_settings()
    return resolve_secret(
        settings.status_api_token, settings.status_api_token_secret_name, what="the status API token"
    )


def _push_token() -> str:
    settings = environment_settings()
    return resolve_secret(settings.push_token, settings.push_token_secret_name, what="the push token")


@cache
def _idempotency_config() -> Any:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    return IdempotencyConfig(expires_after_seconds=24 * 3600)


@cache
def _finish_task_once() -> Any:
    """``complete_task`` behind a Powertools idempotency lock on the task id: two copies of a
    push (EventBridge delivers at least once) never finish the same task twice at once."""
    settings = environment_settings()
    if not settings.idempotency_table:
        return lambda task_id: _count(_finish(task_id))
    import boto3
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent_function

    persistence = DynamoDBPersistenceLayer(
        table_name=settings.idempotency_table,
        boto3_client=boto3.client("dynamodb", endpoint_url=settings.aws_endpoint_url),
    )

    @idempotent_function(
        data_keyword_argument="task_id", persistence_store=persistence, config=_idempotency_config()
    )
    def finish(task_id: str) -> dict[str, int]:
        return _count(_finish(task_id))

    return lambda task_id: finish(task_id=task_id)


def _finish(task_id: str) -> list[Completion]:
    # API Gateway gives up after 29 s: stop with a margin and leave the rest to the reconciler.
    context = app.lambda_context
    return complete_task(
        "dashscope",
        task_id,
        environment_ports(),
        out_of_time=lambda: context.get_remaining_time_in_millis() < PUSH_MARGIN_MS,
    )


def _count(completions: list[Completion]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for completion in completions:
        counts[completion.outcome.value] = counts.get(completion.outcome.value, 0) + 1
        if completion.outcome is CompletionOutcome.DONE:
            metrics.add_metric(name="JobsCompleted", unit=MetricUnit.Count, value=1)
            if completion.audio_ms:
                metrics.add_metric(
                    name="AudioSeconds", unit=MetricUnit.Seconds, value=completion.audio_ms / 1000
                )
        elif completion.outcome is CompletionOutcome.FAILED:
            metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
    return counts


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


NOT_FOUND = {"message": "Not found"}
# Room for one more job after the check: a result download (timeout 8 s) and five small writes.
PUSH_MARGIN_MS = 15_000


@app.post("/callbacks/sis/<job_id>")
def sis_callback(job_id: str) -> Response:
    logger.set_correlation_id(job_id)
    metrics.add_metric(name="CallbacksReceived", unit=MetricUnit.Count, value=1)
    raw = app.current_event.body or ""
    if _oversized(raw):
        return _json(413, {"message": "Payload too large"})
    token = app.current_event.get_query_string_value("token")
    try:
        completion = complete_sis_callback(job_id, token, _claimed_task_id(raw), environment_ports())
    except ProviderError as exc:
        # The provider could not be asked; answer non-200 so the callback is retried.
        logger.warning("Could not re-fetch the SIS job", extra={"job_id": job_id, "code": exc.code})
        return _json(503, {"message": "Try again later"})
    if completion.outcome is CompletionOutcome.UNKNOWN_JOB:
        metrics.add_metric(name="CallbacksRefused", unit=MetricUnit.Count, value=1)
        return _json(404, NOT_FOUND)
    _count([completion])
    return _json(200, {"result": completion.outcome.value})


@app.post("/callbacks/dashscope")
def dashscope_push() -> Response:
    metrics.add_metric(name="PushesReceived", unit=MetricUnit.Count, value=1)
    settings = environment_settings()
    raw = app.current_event.body or ""
    if _oversized(raw):
        return _json(413, {"message": "Payload too large"})
    headers = app.current_event.headers
    try:
        event = TaskFinishedEvent.parse(raw)
    except PushRejected as exc:
        logger.warning("Push refused", extra={"reason": str(exc)})
        metrics.add_metric(name="CallbacksRefused", unit=MetricUnit.Count, value=1)
        return _json(401, {"message": "Unauthorized"})
    refusal = push_refusal(
        headers.get(settings.push_token_header),
        _push_token(),
        _sent_at(headers.get("x-eventbridge-signature-timestamp"), event),
        utc_now(),
        max_skew_s=settings.push_max_skew_s,
    )
    if refusal:
        logger.warning("Push refused", extra={"reason": refusal, "task_id": event.data.task_id})
        metrics.add_metric(name="CallbacksRefused", unit=MetricUnit.Count, value=1)
        return _json(401, {"message": "Unauthorized"})
    logger.set_correlation_id(event.data.task_id)
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    try:
        counts = _finish_task_once()(event.data.task_id)
    except (UnknownTask, IdempotencyAlreadyInProgressError) as exc:
        # Our bookkeeping is not there yet, or a copy of this push is being handled: ask for a redelivery.
        logger.info("Push deferred", extra={"task_id": event.data.task_id, "reason": type(exc).__name__})
        return _json(409, {"message": "Not ready; retry later"})
    except ProviderError as exc:
        logger.warning(
            "Could not fetch the DashScope task", extra={"task_id": event.data.task_id, "code": exc.code}
        )
        return _json(503, {"message": "Try again later"})
    return _json(200, {"result": counts})


def _sent_at(header: str | None, event: TaskFinishedEvent) -> datetime | None:
    """EventBridge's signing timestamp (epoch ms) if present, else the event's own time."""
    if header and header.isdigit():
        value = int(header)
        # Epoch milliseconds, or seconds: 1e11 s is the year 5138, 1e11 ms is 1973.
        return datetime.fromtimestamp(value / 1000 if value >= 100_000_000_000 else value, tz=UTC)
    return event.time if event.time and event.time.tzinfo else None


def _oversized(raw: str) -> bool:
    size = len(raw.encode("utf-8"))
    if size > environment_settings().max_callback_body_bytes:
        logger.warning(
            "Callback body too large; refused", extra={"path": app.current_event.path, "bytes": size}
        )
        return True
    return False


def _claimed_task_id(raw: str) -> str | None:
    """The SIS job id the body claims: used only to ask SIS, never trusted as a result."""
    try:
        body = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return None
    claimed = body.get("job_id") if isinstance(body, dict) else None
    return claimed if isinstance(claimed, str) and 0 < len(claimed) <= 128 else None


@app.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    metrics.add_metric(name="StatusRequests", unit=MetricUnit.Count, value=1)
    header = app.current_event.headers.get("Authorization") or ""
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), _status_token().encode()):
        return _json(401, {"message": "Unauthorized"})
    view = job_status(job_id, environment_ports().jobs)
    if view is None:
        return _json(404, NOT_FOUND)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=view.model_dump_json())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The idempotency lock on a push then expires with this invocation if it dies mid-way.
    _idempotency_config().register_lambda_context(context)
    return app.resolve(event, context)
