"""API Gateway (REST) proxy events ↔ the HTTP API's requests and replies."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from bucketscribe.entrypoints.http.routing import RemainingTime, Reply, Request


def request_from_proxy_event(event: Mapping[str, Any], context: RemainingTime) -> Request:
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    # A client's repeated header: the proxy's single-value map holds its last value; take the same
    # where only the multi-value map came.
    for name, values in (event.get("multiValueHeaders") or {}).items():
        if values and name.lower() not in headers:
            headers[name.lower()] = values[-1]
    return Request(
        method=str(event.get("httpMethod") or ""),
        path=str(event.get("path") or "/"),
        headers=headers,
        query=dict(event.get("queryStringParameters") or {}),
        read_body=lambda: _text_body(event),
        context=context,
    )


def _text_body(event: Mapping[str, Any]) -> str:
    raw = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return str(raw)
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""  # marked base64 but is not: read as no body, which every route refuses


def proxy_response(reply: Reply) -> dict[str, Any]:
    return {
        "statusCode": reply.status,
        "headers": {"Content-Type": reply.content_type},
        "body": reply.body,
        "isBase64Encoded": False,
    }
