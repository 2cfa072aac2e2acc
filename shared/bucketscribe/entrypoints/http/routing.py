"""The few routes of the HTTP API, matched on API Gateway's REST proxy events.

Three routes with path parameters need no framework: Powertools' event handler, which did this
before, imported every event type it knows and asyncio, ~35 ms of each callback function's cold
start. A route's handler gets the ``Request`` (headers case-insensitive, the body decoded only
when a handler reads it) and answers a ``Reply``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from bucketscribe.observability import logger

# A path parameter is one whole segment (``/jobs/<job_id>``).
_PARAMETER = re.compile(r"<(\w+)>")


class RemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    content_type: str = "application/json"

    @classmethod
    def json(cls, status: int, body: Mapping[str, Any] | str) -> Reply:
        return cls(status, body if isinstance(body, str) else json.dumps(body))

    def proxy_response(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": self.content_type},
            "body": self.body,
            "isBase64Encoded": False,
        }


@dataclass(frozen=True)
class Request:
    event: Mapping[str, Any]
    context: RemainingTime
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return str(self.event.get("path") or "/")

    @cached_property
    def query(self) -> Mapping[str, str]:
        return dict(self.event.get("queryStringParameters") or {})

    def header(self, name: str) -> str | None:
        """A header's value, whatever case the client wrote its name in."""
        return self._headers.get(name.lower())

    @cached_property
    def _headers(self) -> dict[str, str]:
        headers = {name.lower(): value for name, value in (self.event.get("headers") or {}).items()}
        for name, values in (self.event.get("multiValueHeaders") or {}).items():
            if values and name.lower() not in headers:
                headers[name.lower()] = values[-1]
        return headers

    @cached_property
    def body(self) -> str:
        """The body as text (read only by the routes that need it: a callback whose attempt has
        its task recorded never reads it)."""
        raw = self.event.get("body") or ""
        if not self.event.get("isBase64Encoded"):
            return str(raw)
        try:
            return base64.b64decode(raw, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return ""  # not base64 after all: read as no body, which every route refuses


Handler = Callable[[Request], Reply]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


class Router:
    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        """Register ``handler`` for ``method`` on ``path`` (``/jobs/<job_id>``: ``job_id`` is one
        segment, handed over in ``request.params``)."""
        pattern = re.compile("^" + _PARAMETER.sub(r"(?P<\1>[^/]+)", re.escape(path)) + "$")

        def register(handler: Handler) -> Handler:
            self._routes.append(_Route(method.upper(), pattern, handler))
            return handler

        return register

    def include(self, other: Router) -> None:
        self._routes.extend(other._routes)

    def resolve(self, event: Mapping[str, Any], context: RemainingTime) -> dict[str, Any]:
        """The proxy response to ``event``: its route's reply, else 404 (an unknown path or method
        says nothing of which routes exist)."""
        method = str(event.get("httpMethod") or "").upper()
        path = str(event.get("path") or "/")
        for route in self._routes:
            matched = route.pattern.match(path)
            if matched and route.method == method:
                return route.handler(Request(event, context, matched.groupdict())).proxy_response()
        logger.info("No route", extra={"method": method, "path": path})
        return Reply.json(404, {"message": "Not found"}).proxy_response()
