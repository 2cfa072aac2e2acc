"""Callback entry point: the HTTP API (API Gateway REST → Powertools event handler).

- ``POST /callbacks/sis/{job_id}?token=…`` SIS says a job finished; we re-fetch and finish it.
- ``GET /jobs/{job_id}`` where a job stands (``Authorization: Bearer <status token>``).
"""

from __future__ import annotations

import hmac
import json
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from bucketscribe.pipeline.complete import CompletionOutcome, complete_sis_callback
from bucketscribe.pipeline.ports import PipelinePorts
from bucketscribe.pipeline.status import job_status
from bucketscribe.providers.base import ProviderError
from bucketscribe.secret_store import resolve_secret
from bucketscribe.settings import Settings
from bucketscribe.wiring import build_ports

logger = Logger(service="bucketscribe")
metrics = Metrics(namespace="bucketscribe", service="bucketscribe")
app = APIGatewayRestResolver()


@cache
def _settings() -> Settings:
    return Settings()


@cache
def _ports() -> PipelinePorts:
    return build_ports(_settings())


@cache
def _status_token() -> str:
    settings = _settings()
    return resolve_secret(
        settings.status_api_token, settings.status_api_token_secret_name, what="the status API token"
    )


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


NOT_FOUND = {"message": "Not found"}


@app.post("/callbacks/sis/<job_id>")
def sis_callback(job_id: str) -> Response:
    logger.set_correlation_id(job_id)
    metrics.add_metric(name="CallbacksReceived", unit=MetricUnit.Count, value=1)
    raw = app.current_event.body or ""
    if len(raw.encode("utf-8")) > _settings().max_callback_body_bytes:
        logger.warning("Callback body too large; refused", extra={"job_id": job_id, "bytes": len(raw)})
        return _json(413, {"message": "Payload too large"})
    token = app.current_event.get_query_string_value("token")
    try:
        completion = complete_sis_callback(job_id, token, _claimed_task_id(raw), _ports())
    except ProviderError as exc:
        # The provider could not be asked; answer non-200 so the callback is retried.
        logger.warning("Could not re-fetch the SIS job", extra={"job_id": job_id, "code": exc.code})
        return _json(503, {"message": "Try again later"})
    if completion.outcome is CompletionOutcome.UNKNOWN_JOB:
        metrics.add_metric(name="CallbacksRefused", unit=MetricUnit.Count, value=1)
        return _json(404, NOT_FOUND)
    if completion.outcome is CompletionOutcome.DONE:
        metrics.add_metric(name="JobsCompleted", unit=MetricUnit.Count, value=1)
        if completion.audio_ms:
            metrics.add_metric(name="AudioSeconds", unit=MetricUnit.Seconds, value=completion.audio_ms / 1000)
    elif completion.outcome is CompletionOutcome.FAILED:
        metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
    return _json(200, {"result": completion.outcome.value})


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
    view = job_status(job_id, _ports().jobs)
    if view is None:
        return _json(404, NOT_FOUND)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=view.model_dump_json())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
