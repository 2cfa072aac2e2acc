"""The Huawei Cloud shape of the local stack (``bucketscribe up --cloud huawei``).

The same moto server and emulators as the AWS shape, wired as Huawei Cloud wires the functions:

- the functions run on the Huawei cloud's adapters (``BUCKETSCRIBE_CLOUD=huawei``): storage goes
  through ``esdk-obs-python`` and the job store
  through an explicit DynamoDB-compatible endpoint, as GeminiDB is reached;
- every upload under the input prefix invokes the FunctionGraph ``submit`` entry point directly,
  asynchronously, with the OBS trigger's event — no queue: the bucket's notification reaches a
  local endpoint that stands in for FunctionGraph's OBS trigger, which queues an asynchronous
  invocation with FunctionGraph's retries and writes an event that failed every retry under
  ``failed-invocations/submit/``;
- SIS callbacks, DashScope pushes and ``GET /jobs`` arrive as API Gateway trigger events (base64
  bodies) at the FunctionGraph ``callback`` entry point;
- a timer runs the FunctionGraph ``reconcile`` entry point, which also settles failure records.

Each invocation gets a FunctionGraph context with a local agency key, which the entry points hand
to the OBS adapter, as on FunctionGraph.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from pydantic import SecretStr

from bucketscribe.clouds.huawei.credentials import HuaweiCredentials
from bucketscribe_local.aws_resources import LOCAL_REGION
from bucketscribe_local.functiongraph_bridge import (
    AsyncInvoker,
    FunctionGraphHandler,
    LocalFunctionGraphContext,
    apig_trigger_app,
    obs_trigger_event,
)

if TYPE_CHECKING:
    from bucketscribe_local.aws_resources import LocalAwsResources
    from bucketscribe_local.http_thread import BackgroundHttpServer


class _Stack(Protocol):
    """What this shape uses of the stack that made it."""

    endpoint_url: str
    resources: LocalAwsResources | None
    options: Any  # the stack's options (their ``names``)

    @property
    def bucket(self) -> str: ...

    def client(self, service: str) -> Any: ...


FAILED_INVOCATIONS_PREFIX = "failed-invocations/submit/"
# The settings only the AWS shape has: the queue's, and the endpoint AWS's adapters are given.
AWS_ONLY_SETTINGS = (
    "BUCKETSCRIBE_DEAD_LETTER_QUEUE_URL",
    "BUCKETSCRIBE_UPLOAD_QUEUE_URL",
    "BUCKETSCRIBE_AWS_ENDPOINT_URL",
)
# The local function's agency: moto does not check keys, the entry points must still pass one on.
LOCAL_AGENCY_KEY = HuaweiCredentials(
    ak="local-agency-ak", sk=SecretStr(secrets.token_hex(16)), security_token=SecretStr(secrets.token_hex(32))
)


def _handler(module: str) -> FunctionGraphHandler:
    from importlib import import_module

    handler: FunctionGraphHandler = import_module(
        f"bucketscribe.clouds.huawei.functiongraph.{module}"
    ).handler
    return handler


def _context(function: str, timeout_s: float, request_id: str | None = None) -> LocalFunctionGraphContext:
    context = LocalFunctionGraphContext(f"bucketscribe-{function}", LOCAL_AGENCY_KEY, timeout_s=timeout_s)
    if request_id is not None:  # an asynchronous invocation keeps its request id through retries
        context.request_id = request_id
    return context


def callback_app(routes: list[tuple[str, str]]) -> web.Application:
    """The callback API as API Gateway serves it from FunctionGraph (timeout 28 s, api.tf)."""
    return apig_trigger_app(lambda: _handler("callback"), routes, lambda: _context("callback", 28))


class HuaweiShape:
    """Made by ``LocalStack`` for ``cloud="huawei"``: it adds the Huawei deploy's settings to the
    stack's, then takes the place of the SQS dispatcher (the upload trigger)."""

    def __init__(self, stack: _Stack) -> None:
        self._stack = stack
        self._settings_before: dict[str, str | None] = {}
        self._notifications: BackgroundHttpServer | None = None
        self.uploads = AsyncInvoker(
            _handler("submit"),
            lambda request_id: _context("submit", 300, request_id),
            on_failure=self._write_failure_record,
        )

    def start(self) -> HuaweiShape:
        self._replace_the_queue_with_a_trigger()
        self.uploads.start()
        return self

    def stop(self) -> None:
        self.uploads.stop()
        if self._notifications is not None:
            self._notifications.stop()
        for name, value in self._settings_before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    # ----- what the stack and tests ask of the upload trigger -------------------------------------

    def reconcile_now(self) -> dict[str, Any]:
        """One run of the FunctionGraph reconcile function, as its timer trigger calls it."""
        timer = {"version": "v1.0", "trigger_type": "TIMER", "trigger_name": "local", "user_event": ""}
        result: dict[str, Any] = _handler("reconcile")(timer, _context("reconcile", 300))
        return result

    def wait_idle(self, *, timeout_s: float) -> bool:
        return self.uploads.wait_idle(timeout_s=timeout_s)

    def pause(self) -> None:
        self.uploads.pause()

    def resume(self) -> None:
        self.uploads.resume()

    def set_batching(self, batch_size: int, window_s: float) -> None:
        raise NotImplementedError("the OBS trigger invokes the function once per event: there is no batching")

    # ----- set-up ----------------------------------------------------------------------------------

    def configure_settings(self) -> None:
        """The functions' settings as the Huawei deploy gives them (before they are read)."""
        stack = self._stack
        huawei = {
            "BUCKETSCRIBE_CLOUD": "huawei",
            "BUCKETSCRIBE_OBS_SERVER": stack.endpoint_url,
            "BUCKETSCRIBE_OBS_REGION": LOCAL_REGION,
            # moto in GeminiDB's place: the job store is reached at an explicit endpoint.
            "BUCKETSCRIBE_JOBS_ENDPOINT_URL": stack.endpoint_url,
            "BUCKETSCRIBE_JOBS_REGION": LOCAL_REGION,
            "BUCKETSCRIBE_FAILED_INVOCATIONS_BUCKET": stack.bucket,
            "BUCKETSCRIBE_FAILED_INVOCATIONS_PREFIX": FAILED_INVOCATIONS_PREFIX,
        }
        self._settings_before = {name: os.environ.get(name) for name in (*huawei, *AWS_ONLY_SETTINGS)}
        for name in AWS_ONLY_SETTINGS:
            os.environ.pop(name, None)
        os.environ.update(huawei)

    def _replace_the_queue_with_a_trigger(self) -> None:
        """No SQS on this shape: the bucket notifies the local OBS trigger (through moto's SNS,
        the one way moto pushes a notification out), which invokes submit asynchronously."""
        from bucketscribe_local.http_thread import BackgroundHttpServer

        stack = self._stack
        assert stack.resources is not None
        sqs = stack.client("sqs")
        # What the bucket notified before the trigger existed (a --state-dir restore puts the
        # uploads that were in flight once more) goes to the trigger, not away with the queue.
        for record in _queued_records(sqs, stack.resources.queue_url):
            self.uploads.invoke(obs_trigger_event(record))
        for queue_url in (stack.resources.queue_url, stack.resources.dead_letter_queue_url):
            sqs.delete_queue(QueueUrl=queue_url)
        app = web.Application()
        app.router.add_post("/obs-trigger", self._notified)
        self._notifications = BackgroundHttpServer(app).start()
        sns = stack.client("sns")
        topic = sns.create_topic(Name="bucketscribe-obs-trigger")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=f"{self._notifications.url}/obs-trigger")
        names = stack.options.names
        prefix = names.input_prefix if names.notification_prefix is None else names.notification_prefix
        notify: dict[str, Any] = {"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}
        if prefix:
            notify["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}
        stack.client("s3").put_bucket_notification_configuration(
            Bucket=stack.bucket, NotificationConfiguration={"TopicConfigurations": [notify]}
        )

    async def _notified(self, request: web.Request) -> web.Response:
        envelope = json.loads(await request.read())
        message = json.loads(envelope.get("Message") or "{}")
        for record in message.get("Records", []):
            self.uploads.invoke(obs_trigger_event(record))
        return web.Response(status=200)

    def _write_failure_record(self, record: dict[str, Any]) -> None:
        """FunctionGraph's failure destination (functions.tf: on_failure → OBS)."""
        key = f"{FAILED_INVOCATIONS_PREFIX}{record['request_context']['request_id']}.json"
        body = json.dumps(record).encode("utf-8")
        self._stack.client("s3").put_object(
            Bucket=self._stack.bucket, Key=key, Body=body, ContentType="application/json"
        )


def _queued_records(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            records.extend(json.loads(message["Body"]).get("Records", []))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return records
