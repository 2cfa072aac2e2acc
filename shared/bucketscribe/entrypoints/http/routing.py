"""The few routes of the HTTP API, on requests each cloud's callback entry point reads from its
own gateway's event (``clouds/<name>/``): the routes never see a cloud's event shape.

Three routes with path parameters need no framework: Powertools' event handler, which did this
before, imported every event type it knows and asyncio, ~35 ms of each callback function's cold
start. A route's handler gets the ``Request`` and answers a ``Reply``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
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


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    # Header names lower-cased by whoever builds the request (``header`` looks them up so).
    headers: Mapping[str, str]
    query: Mapping[str, str]
    # The body as text, read only by the routes that need it: a callback whose attempt has its
    # task recorded never reads it, whatever its size.
    read_body: Callable[[], str]
    context: RemainingTime
    params: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """A header's value, whatever case the client wrote its name in."""
        return self.headers.get(name.lower())

    @cached_property
    def body(self) -> str:
        return self.read_body()


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
        """Register a handler for ``method`` on ``path`` (``/jobs/<job_id>``: ``job_id`` is one
        segment, handed over in ``request.params``)."""
        pattern = re.compile("^" + _PARAMETER.sub(r"(?P<\1>[^/]+)", re.escape(path)) + "$")

        def register(handler: Handler) -> Handler:
            self._routes.append(_Route(method.upper(), pattern, handler))
            return handler

        return register

    def include(self, other: Router) -> None:
        self._routes.extend(other._routes)

    def resolve(self, request: Request) -> Reply:
        """Its route's reply, else 404 (an unknown path or method says nothing of which routes exist)."""
        method = request.method.upper()
        for route in self._routes:
            matched = route.pattern.match(request.path)
            if matched and route.method == method:
                return route.handler(replace(request, params=matched.groupdict()))
        logger.info("No route", extra={"method": method, "path": request.path})
        return Reply.json(404, {"message": "Not found"})
