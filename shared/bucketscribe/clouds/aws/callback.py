"""Callback entry point: the HTTP API (API Gateway REST → Powertools event handler).

Routes, one module per family under ``entrypoints/http``:
- ``POST /callbacks/sis/{job_id}?attempt=…&exp=…&token=…`` SIS says a job finished;
- ``POST /callbacks/{provider}`` a provider's task-finished push (DashScope via EventBridge);
- ``GET /jobs/{job_id}``, ``GET /jobs?bucket=&key=`` where a job stands (bearer token).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from bucketscribe.entrypoints.http import callbacks as sis_callbacks
from bucketscribe.entrypoints.http import job_status, pushes
from bucketscribe.observability import logger, metrics

app = APIGatewayRestResolver()
for routes in (sis_callbacks.router, pushes.router, job_status.router):
    app.include_router(routes)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
