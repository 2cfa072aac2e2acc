"""Run the real function handlers locally, fed the events AWS would send them.

- ``SqsDispatcher`` long-polls the upload queue and hands batches to the submit
  handler in the Lambda SQS event shape, deleting only the messages the handler
  did not report as failed (what the Lambda SQS integration does).
- ``api_gateway_app`` turns HTTP requests into API Gateway REST proxy events
  for the callback handler and its answers back into HTTP responses.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bucketscribe_local.function_instances import invocations_for
from bucketscribe_local.pipeline_faults import SimulatedCrash

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
log = logging.getLogger("bucketscribe_local")


@dataclass
class LocalLambdaContext:
    function_name: str
    # The deployed timeouts: submit and reconcile 300 s, callback 28 s (serverless.yml).
    timeout_s: float = 60.0
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = field(default=0.0)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


class Ticker:
    """Calls a function every ``interval_s`` seconds in a thread (the reconcile schedule)."""

    def __init__(self, interval_s: float, tick: Callable[[], Any], *, name: str = "ticker") -> None:
        self._interval_s = interval_s
        self._tick = tick
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._lock = threading.Lock()  # held for the length of a tick: pausing waits for it
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.ticks = 0
        # Runs that raised (a reconcile run that aborted); the soak reports them.
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def pause(self) -> None:
        """No tick from now on (one under way is waited for) until ``resume``."""
        self._paused.set()
        with self._lock:
            pass

    def resume(self) -> None:
        self._paused.clear()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            with self._lock:
                if self._paused.is_set():
                    continue
                try:
                    self._tick()
                except SimulatedCrash:
                    # The instance died mid-run (a soak's fault): the schedule fires again regardless.
                    log.warning("A scheduled run crashed (simulated); it runs again at the next tick")
                except Exception:
                    self.failures += 1
                    log.exception("A scheduled run failed; it runs again at the next tick")
                self.ticks += 1


class SqsDispatcher:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        handler: LambdaHandler,
        *,
        batch_size: int = 10,
        batching_window_s: float = 0.0,
        concurrency: int = 1,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._handler = handler
        # Like Lambda's SQS integration: gather up to batch_size messages for at most the window.
        self._batch_size = batch_size
        self._batching_window_s = batching_window_s
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._polling = threading.Lock()
        # Like the event source's maximumConcurrency: batches run side by side in up to this many
        # instances, and no messages are taken while every instance is busy.
        self._concurrency = max(concurrency, 1)
        self._instances = threading.Semaphore(self._concurrency)
        self._thread = threading.Thread(target=self._run, name="sqs-dispatcher", daemon=True)
        self._counting = threading.Lock()
        self._invocations = 0
        self.batches = 0
        self.crashes = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def pause(self) -> None:
        """Stop taking messages (as a disabled event source does); the queue fills up.

        Returns once the batches in flight have been handed over, so nothing is taken after this."""
        self._running.clear()
        with self._polling:
            for _ in range(self._concurrency):  # every instance idle
                self._instances.acquire()
            for _ in range(self._concurrency):
                self._instances.release()

    def resume(self) -> None:
        self._running.set()

    def set_batching(self, batch_size: int, window_s: float) -> None:
        self._batch_size = batch_size
        self._batching_window_s = window_s

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._running.wait(timeout=0.2):
                continue
            try:
                with self._polling:
                    if self._running.is_set():
                        self._dispatch_once(wait_s=1)
            except Exception:
                log.exception("The upload dispatcher failed; retrying in a second")
                self._stop.wait(1)

    def _dispatch_once(self, *, wait_s: int) -> None:
        """Gather a batch once an instance is free and hand it to that instance's thread."""
        if not self._instances.acquire(timeout=0.2):
            return
        try:
            messages = self._gather(wait_s) if self._running.is_set() else []
        except BaseException:
            self._instances.release()
            raise
        if not messages:
            self._instances.release()
            return
        with self._counting:
            self._invocations += 1
            name = f"sqs-dispatcher-{self._invocations}"

        def invoke() -> None:
            try:
                self._invoke(messages)
            except Exception:
                log.exception("Handing a batch to the submit function failed; it comes back later")
            finally:
                self._instances.release()

        threading.Thread(target=invoke, name=name, daemon=True).start()

    def _receive(self, count: int, wait_s: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=min(10, count),
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _gather(self, wait_s: int) -> list[dict[str, Any]]:
        batch_size, window_s = self._batch_size, self._batching_window_s
        first = self._receive(batch_size, wait_s)
        if not first:
            return []
        # By message id: a message whose visibility ran out while the batch was gathered comes
        # back once more; Lambda's poller hands each message to one batch only.
        gathered = {m["MessageId"]: m for m in first}
        deadline = time.monotonic() + window_s
        while len(gathered) < batch_size and time.monotonic() < deadline:
            more = self._receive(batch_size - len(gathered), 0)
            gathered.update({m["MessageId"]: m for m in more})
            if not more:
                time.sleep(0.05)
        return list(gathered.values())

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [self._record(m) for m in messages]}
        try:
            result = self._handler(event, LocalLambdaContext("bucketscribe-submit", timeout_s=300))
        except SimulatedCrash:
            # The instance died: nothing is reported or deleted; SQS hands every message of the
            # batch out again once its visibility timeout runs out, as Lambda's poller would see.
            log.warning("The submit function crashed (simulated); its batch comes back later")
            with self._counting:
                self.crashes += 1
            return
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):  # SQS deletes at most 10 per call
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )
        with self._counting:
            self.batches += 1

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": "us-east-1",
        }


def api_gateway_app(handler: LambdaHandler, routes: list[tuple[str, str]]) -> web.Application:
    """An aiohttp app: ``routes`` are (method, resource) like ("POST", "/callbacks/sis/{job_id}")."""

    async def invoke(request: web.Request) -> web.Response:
        body = await request.read()
        event = {
            "resource": request.match_info.route.resource.canonical
            if request.match_info.route.resource
            else "",
            "path": request.path,
            "httpMethod": request.method,
            "headers": dict(request.headers),
            "multiValueHeaders": {k: request.headers.getall(k) for k in request.headers},
            "queryStringParameters": dict(request.query) or None,
            "multiValueQueryStringParameters": {k: request.query.getall(k) for k in request.query} or None,
            "pathParameters": dict(request.match_info) or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": request.match_info.route.resource.canonical
                if request.match_info.route.resource
                else "",
                "httpMethod": request.method,
                "path": request.path,
                "stage": "local",
                "requestId": str(uuid.uuid4()),
                "identity": {"sourceIp": request.remote or "127.0.0.1"},
            },
            "body": body.decode("utf-8", errors="replace") if body else None,
            "isBase64Encoded": False,
        }
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(
            invocations, handler, event, LocalLambdaContext("bucketscribe-callback", timeout_s=28)
        )
        headers = {k: v for k, v in (result.get("headers") or {}).items() if k.lower() != "content-length"}
        return web.Response(
            status=result.get("statusCode", 502), text=result.get("body") or "", headers=headers
        )

    app = web.Application(client_max_size=16 * 1024 * 1024)
    invocations = invocations_for(app, "callback")
    for method, resource in routes:
        app.router.add_route(method, resource, invoke)
    return app
