"""FunctionGraph's APIG trigger event ↔ the HTTP API's requests and replies.

API Gateway (Huawei) calls the function with ``httpMethod``, ``path``, ``headers``,
``pathParameters``, ``queryStringParameters``, ``requestContext`` and a ``body`` that is base64
by default (``isBase64Encoded``: true), and expects ``statusCode``, ``headers``, ``body`` and
``isBase64Encoded`` back. The body is decoded here, once, so the routes read the same text on
every cloud.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bucketscribe.entrypoints.http.routing import RemainingTime, Reply, Request


class UnreadableRequest(ValueError):
    """The gateway's event cannot be turned into a request (not an APIG event, a broken body)."""


def _single(values: dict[str, str | list[str]]) -> dict[str, str]:
    """One value per name: the last of a repeated one (none for an empty list)."""
    single: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, str):
            single[name] = value
        elif value:
            single[name] = value[-1]
    return single


class ApigRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    http_method: str = Field(alias="httpMethod", min_length=1)
    path: str = Field(min_length=1)
    headers: dict[str, str | list[str]] = Field(default_factory=dict)
    query: dict[str, str | list[str]] = Field(default_factory=dict, alias="queryStringParameters")
    path_parameters: dict[str, str] = Field(default_factory=dict, alias="pathParameters")
    request_context: dict[str, Any] = Field(default_factory=dict, alias="requestContext")
    body: str = ""
    # API Gateway's default: the body arrives base64-encoded.
    is_base64_encoded: bool = Field(default=True, alias="isBase64Encoded")

    @field_validator("headers", "query", "path_parameters", "request_context", "body", mode="before")
    @classmethod
    def _absent_is_empty(cls, value: Any, info: Any) -> Any:
        if value is None:
            return "" if info.field_name == "body" else {}
        return value

    def text_body(self) -> str:
        if not self.is_base64_encoded:
            return self.body
        try:
            raw = base64.b64decode(self.body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UnreadableRequest("the body is marked base64 but is not") from exc
        return raw.decode("utf-8", errors="replace")

    def to_request(self, context: RemainingTime) -> Request:
        """The request the HTTP routes read; the body decoded now, so a broken one is refused
        before any route runs."""
        body = self.text_body()
        return Request(
            method=self.http_method.upper(),
            path=self.path,
            headers={name.lower(): value for name, value in _single(self.headers).items()},
            query=_single(self.query),
            read_body=lambda: body,
            context=context,
        )


def parse_request(event: Any) -> ApigRequest:
    if not isinstance(event, dict):
        raise UnreadableRequest("the event is not a JSON object")
    try:
        return ApigRequest.model_validate(event)
    except ValueError as exc:
        raise UnreadableRequest(f"not an APIG trigger event: {str(exc).splitlines()[0]}") from exc


def apig_response(reply: Reply) -> dict[str, Any]:
    """A route's reply in the shape API Gateway wants from FunctionGraph."""
    return {
        "statusCode": reply.status,
        "headers": {"Content-Type": reply.content_type},
        "body": reply.body,
        "isBase64Encoded": False,
    }


def apig_json(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }
