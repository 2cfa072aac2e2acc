"""The events AWS hands the deployed handlers, made from what the local stack holds, for tests and
benchmarks that call a handler themselves (``clouds/aws/submit.handler``, ``clouds/aws/callback.handler``)
instead of letting the stack's queue poller or HTTP server do it.

- ``sqs_batch``: an SQS batch of S3 notifications, one message per upload, each record carrying the
  upload's size and ETag as S3 sends them;
- ``proxy_event``: an API Gateway (REST) proxy request, the shape ``lambda_bridge.api_gateway_app``
  makes of a real HTTP request;
- ``sis_callback`` and ``dashscope_push``: what the SIS emulator would POST to a job's callback URL
  and what the DashScope emulator would push for a finished task, as (url, body, headers).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

from bucketscribe.domain.upload import ObjectRef

if TYPE_CHECKING:
    from bucketscribe_local.stack import LocalStack

# The DashScope push's signing time header, as EventBridge sends it (providers/dashscope/push.py).
SIGNING_TIME_HEADER = "x-eventbridge-signature-timestamp"


def notification_record(ref: ObjectRef) -> dict[str, Any]:
    """An S3 event notification record for ``ref``, the key encoded the way S3 encodes it."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": ref.bucket},
            "object": {"key": quote_plus(ref.key, safe="/"), "size": ref.size, "eTag": ref.etag},
        },
    }


def sqs_batch(
    refs: list[ObjectRef], *, queue_arn: str = "arn:aws:sqs:us-east-1:000000000000:uploads"
) -> dict[str, Any]:
    """The submit function's event: one SQS message per upload, each an S3 notification."""
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"receipt-{index}",
                "body": json.dumps({"Records": [notification_record(ref)]}),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for index, ref in enumerate(refs)
        ]
    }


def proxy_event(method: str, url: str, *, body: str | None, headers: dict[str, str]) -> dict[str, Any]:
    """An API Gateway REST proxy event for a request to ``url`` (its path and query string)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    return {
        "path": parts.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {name: [value] for name, value in query.items()} or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "httpMethod": method,
            "path": parts.path,
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def sis_callback(stack: LocalStack, sis_job_id: str) -> tuple[str, str, dict[str, str]]:
    """The callback the SIS emulator makes for a finished job: the URL the submission gave it, the
    job's result with its id (SIS posts the whole result), and the headers."""
    backend = stack.sis.backend
    url = backend.job_stats(sis_job_id).callback_url
    if url is None:
        raise ValueError(f"SIS job {sis_job_id} was submitted without a callback URL")
    body = json.dumps({"job_id": sis_job_id, **backend.describe(sis_job_id)}, ensure_ascii=False)
    return url, body, {"content-type": "application/json"}


def dashscope_push(stack: LocalStack, task_id: str) -> tuple[str, str, dict[str, str]]:
    """The push the DashScope emulator makes for a finished task, as an EventBridge API destination
    delivers it to the stack's callback endpoint (the push token, a fresh signing time)."""
    event = stack.dashscope.backend.task_finished_event(task_id)
    headers = {
        "content-type": "application/json;charset=utf-8",
        "x-bucketscribe-push-token": stack.push_token,
        SIGNING_TIME_HEADER: str(int(time.time() * 1000)),
    }
    return f"{stack.callback_url}/callbacks/dashscope", json.dumps(event, ensure_ascii=False), headers
