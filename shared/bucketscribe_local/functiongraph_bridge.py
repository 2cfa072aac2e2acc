"""Run the FunctionGraph entry points locally, fed the events FunctionGraph would send them.

- ``LocalFunctionGraphContext``: FunctionGraph's context object for one local invocation (request
  id, time left, the agency's temporary key).
- ``AsyncInvoker``: FunctionGraph's asynchronous invocation, which an OBS trigger uses: events
  queue up, a few instances run them, a failed one is tried again (3 retries, with backoff) and
  one that failed every time is handed to the failure destination as FunctionGraph's record.
- ``obs_trigger_event``: one bucket notification record → the OBS trigger's event.
- ``apig_trigger_app``: HTTP requests → API Gateway trigger events (base64 bodies) for the
  callback function, and its answers back into HTTP responses.
"""

from __future__ import annotations

import asyncio
import base64
import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bucketscribe.clouds.huawei.credentials import HuaweiCredentials
from bucketscribe_local.function_instances import invocations_for

FunctionGraphHandler = Callable[[dict[str, Any], Any], Any]
log = logging.getLogger("bucketscribe_local")


@dataclass
class LocalFunctionGraphContext:
    """The methods of FunctionGraph's Python context that the entry points call."""

    function_name: str
    agency_key: HuaweiCredentials
    timeout_s: float = 300.0
    memory_mb: int = 1024
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _deadline: float = field(default=0.0)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    def getRequestID(self) -> str:
        return self.request_id

    def getRemainingTimeInMilliSeconds(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)

    def getRunningTimeInSeconds(self) -> int:
        return int(self.timeout_s)

    def getFunctionName(self) -> str:
        return self.function_name

    def getVersion(self) -> str:
        return "latest"

    def getMemorySize(self) -> int:
        return self.memory_mb

    def getSecurityAccessKey(self) -> str:
        return self.agency_key.ak

    def getSecuritySecretKey(self) -> str:
        return self.agency_key.sk.get_secret_value()

    def getSecurityToken(self) -> str:
        return self.agency_key.security_token.get_secret_value() if self.agency_key.security_token else ""


@dataclass(order=True)
class _Invocation:
    due: float
    order: int
    request_id: str = field(compare=False)
    event: dict[str, Any] = field(compare=False)
    attempts: int = field(default=0, compare=False)


class AsyncInvoker:
    """FunctionGraph's asynchronous invocation of one function: queued events, ``workers``
    instances, ``max_retries`` retries of a failed event after ``retry_delay_s`` (doubling),
    then ``on_failure`` with the record FunctionGraph writes to a failure destination."""

    def __init__(
        self,
        handler: FunctionGraphHandler,
        context: Callable[[str], LocalFunctionGraphContext],
        *,
        on_failure: Callable[[dict[str, Any]], None],
        workers: int = 2,
        max_retries: int = 3,
        retry_delay_s: float = 0.2,
    ) -> None:
        self._handler = handler
        self._context = context
        self._on_failure = on_failure
        self._max_retries = max_retries
        self._retry_delay_s = retry_delay_s
        self._waiting: list[_Invocation] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._unfinished = 0
        self._paused = False
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"functiongraph-async-{n}", daemon=True)
            for n in range(workers)
        ]
        self.invocations = 0
        self.failures = 0

    def start(self) -> AsyncInvoker:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)

    def invoke(self, event: dict[str, Any]) -> str:
        """Queue ``event`` (what ``InvocationType: async`` does) and return its request id."""
        invocation = _Invocation(time.monotonic(), next(self._order), uuid.uuid4().hex, event)
        with self._changed:
            self._unfinished += 1
            heapq.heappush(self._waiting, invocation)
            self._changed.notify_all()
        return invocation.request_id

    def pause(self) -> None:
        """Start no invocation until ``resume`` (events keep queueing)."""
        with self._changed:
            self._paused = True

    def resume(self) -> None:
        with self._changed:
            self._paused = False
            self._changed.notify_all()

    def wait_idle(self, *, timeout_s: float) -> bool:
        """True once every queued event has succeeded or gone to the failure destination."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self._unfinished:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def _next(self) -> _Invocation | None:
        with self._changed:
            while not self._stopping:
                if self._waiting and not self._paused:
                    wait = self._waiting[0].due - time.monotonic()
                    if wait <= 0:
                        return heapq.heappop(self._waiting)
                    self._changed.wait(wait)
                else:
                    self._changed.wait()
            return None

    def _work(self) -> None:
        while (invocation := self._next()) is not None:
            invocation.attempts += 1
            self.invocations += 1
            try:
                self._handler(invocation.event, self._context(invocation.request_id))
            except Exception as exc:
                self._failed(invocation, exc)
            else:
                self._finished()

    def _failed(self, invocation: _Invocation, exc: Exception) -> None:
        if invocation.attempts <= self._max_retries:
            invocation.due = time.monotonic() + self._retry_delay_s * 2 ** (invocation.attempts - 1)
            log.info("Asynchronous invocation failed; retrying", extra={"request_id": invocation.request_id})
            with self._changed:
                heapq.heappush(self._waiting, invocation)
                self._changed.notify_all()
            return
        self.failures += 1
        try:
            function = self._context(invocation.request_id).getFunctionName()
            attempts = invocation.attempts
            self._on_failure(failure_record(function, invocation.request_id, invocation.event, attempts, exc))
        except Exception:
            log.exception("Could not write the failure record", extra={"request_id": invocation.request_id})
        self._finished()

    def _finished(self) -> None:
        with self._changed:
            self._unfinished -= 1
            self._changed.notify_all()


def failure_record(
    function: str, request_id: str, event: dict[str, Any], attempts: int, exc: Exception
) -> dict[str, Any]:
    """What FunctionGraph writes to a failure destination (user guide, "Asynchronous
    Notification Policy"): the request's context, its payload, the function's error."""
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "request_context": {
            "request_id": request_id,
            "function_urn": f"urn:fss:local:function:default:{function}:latest",
            "condition": "RetriesExhausted",
            "approximate_invoke_count": attempts,
        },
        "request_payload": json.dumps(event),
        "response_context": {"status_code": 200, "function_error": f"{type(exc).__name__}: {exc}"},
        "response_payload": "",
    }


def obs_trigger_event(record: dict[str, Any]) -> dict[str, Any]:
    """One S3-style bucket notification record as the OBS trigger delivers it (the sample event
    of FunctionGraph's documentation: eventVersion 2.0, ``s3`` entity, one record per event)."""
    entity = record["s3"]
    return {
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "aws:s3",
                "awsRegion": record.get("awsRegion", "local"),
                "eventTime": record.get("eventTime", datetime.now(UTC).isoformat()),
                "eventName": record["eventName"],
                "userIdentity": {"principalId": "local"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-obs-request-id": uuid.uuid4().hex},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": entity.get("configurationId", "uploads"),
                    "object": dict(entity["object"]),
                    "bucket": {
                        "name": entity["bucket"]["name"],
                        "arn": f"arn:aws:s3:::{entity['bucket']['name']}",
                        "ownerIdentity": {"PrincipalId": "local"},
                    },
                },
            }
        ]
    }


def apig_trigger_app(
    handler: Callable[[], FunctionGraphHandler],
    routes: list[tuple[str, str]],
    context: Callable[[], LocalFunctionGraphContext],
) -> web.Application:
    """An aiohttp app: ``routes`` are (method, path) like ("POST", "/callbacks/sis/{job_id}");
    ``handler`` gives the function to call (imported when the first request arrives)."""

    async def invoke(request: web.Request) -> web.Response:
        body = await request.read()
        query: dict[str, str | list[str]] = {}
        for name in request.query:
            values = request.query.getall(name)
            query[name] = values[0] if len(values) == 1 else list(values)
        event = {
            "httpMethod": request.method,
            "path": request.path,
            "headers": {name.lower(): value for name, value in request.headers.items()},
            "queryStringParameters": query,
            "pathParameters": dict(request.match_info),
            "requestContext": {"requestId": uuid.uuid4().hex, "apiId": "local", "stage": "RELEASE"},
            # API Gateway's default for FunctionGraph backends.
            "body": base64.b64encode(body).decode("ascii"),
            "isBase64Encoded": True,
        }
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(invocations, handler(), event, context())
        answer = str(result.get("body") or "")
        payload = base64.b64decode(answer) if result.get("isBase64Encoded") else answer.encode("utf-8")
        headers = {k: v for k, v in (result.get("headers") or {}).items() if k.lower() != "content-length"}
        return web.Response(status=int(result.get("statusCode", 502)), body=payload, headers=headers)

    app = web.Application(client_max_size=16 * 1024 * 1024)
    invocations = invocations_for(app, "callback")
    for method, path in routes:
        app.router.add_route(method, path, invoke)
    return app
