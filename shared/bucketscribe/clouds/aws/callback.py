"""AWS ``callback``: API Gateway (REST) proxy events → the HTTP API (``entrypoints/http/app.py``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from bucketscribe.clouds.aws.http import proxy_response, request_from_proxy_event
from bucketscribe.entrypoints.http.app import app
from bucketscribe.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return proxy_response(app.resolve(request_from_proxy_event(event, context)))
