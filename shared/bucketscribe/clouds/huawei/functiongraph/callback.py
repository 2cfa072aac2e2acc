"""FunctionGraph ``callback``: provider callbacks and the job status API behind API Gateway.

The APIG trigger event becomes the request the HTTP routes (``entrypoints/http``) read; their
reply goes back in the shape API Gateway expects from FunctionGraph.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from bucketscribe.clouds.huawei.functiongraph.apig import (
    UnreadableRequest,
    apig_json,
    apig_response,
    parse_request,
)
from bucketscribe.clouds.huawei.functiongraph.context import functiongraph_handler
from bucketscribe.entrypoints.http.app import app
from bucketscribe.observability import count, logger


@functiongraph_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = parse_request(event).to_request(context)
    except UnreadableRequest as exc:
        logger.warning("Unreadable gateway event refused", extra={"reason": str(exc)})
        count("CallbacksRefused")
        return apig_json(400, {"message": "Bad request"})
    return apig_response(app.resolve(request))
