"""Counting the AWS calls a function makes, as botocore sees them (for the hot-path tests and bench).

``AwsCallLog`` hooks ``before-call`` on boto3's default session, which every client the deployed
code builds (``boto3.client(...)`` in ``clouds/aws/``) is made from. botocore copies a session's
event hooks into each client when the client is created, so the log must be attached *before*
the functions build their clients: before ``LocalStack.start()``, which builds the ports of the
functions it runs. Calls are kept only inside ``record()`` blocks; a block counts every call made
in the process meanwhile, whichever thread makes it (a handler may work in threads), so whoever
records keeps everything else quiet for that long (no callbacks in flight, no reconcile run).

What botocore never sees is not here: reads over presigned URLs (a provider fetching the upload,
or our own code reading one with urllib) reach the S3 endpoint without a client. Count those at
the endpoint (``bench/hot_path.py`` does, at moto server).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# Where the API parameters of a call wait in botocore's per-call context between the two events.
_PARAMS_KEY = "bucketscribe_local.aws_calls.params"


@dataclass(frozen=True)
class AwsCall:
    service: str  # botocore's service id, hyphenated: "s3", "dynamodb", "sqs"
    operation: str  # "PutItem", "HeadObject", ...
    # The parameters as the caller passed them (an S3 body left out).
    params: Mapping[str, Any] = field(default_factory=dict)
    # The thread that made it: tells the functions' calls from a caller's own (a benchmark's polls)
    # where several run in one process.
    thread: str = ""

    @property
    def name(self) -> str:
        return f"{self.service}.{self.operation}"

    @property
    def item_id(self) -> str | None:
        """The DynamoDB item a call names (``Key.id`` or ``Item.id``), if it names one."""
        for argument in ("Key", "Item"):
            value = self.params.get(argument)
            if isinstance(value, Mapping):
                item_id = value.get("id")
                if isinstance(item_id, Mapping) and isinstance(item_id.get("S"), str):
                    return str(item_id["S"])
        return None

    @property
    def object_key(self) -> str | None:
        """The S3 key a call names, if it names one."""
        key = self.params.get("Key")
        return key if isinstance(key, str) else None


class AwsCallLog:
    """The AWS calls made through boto3's default session while ``record()`` blocks are open."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[list[AwsCall]] = []
        self._session: Any = None

    def attach(self) -> AwsCallLog:
        """Hook boto3's default session (made now if there is none); clients made from it after
        this carry the hooks, clients made before do not."""
        import boto3

        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        self._session = boto3.DEFAULT_SESSION
        events = self._session.events
        events.register("before-parameter-build", self._keep_params, unique_id=self._unique("params"))
        events.register("before-call", self._count, unique_id=self._unique("call"))
        return self

    def detach(self) -> None:
        if self._session is None:
            return
        events = self._session.events
        events.unregister("before-parameter-build", unique_id=self._unique("params"))
        events.unregister("before-call", unique_id=self._unique("call"))
        self._session = None

    def __enter__(self) -> AwsCallLog:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    @contextmanager
    def record(self) -> Iterator[list[AwsCall]]:
        """The calls made (by any thread of this process) until the block ends, in order."""
        calls: list[AwsCall] = []
        with self._lock:
            self._open.append(calls)
        try:
            yield calls
        finally:
            with self._lock:
                self._open.remove(calls)

    def _unique(self, what: str) -> str:
        return f"aws-call-log-{id(self)}-{what}"

    @staticmethod
    def _keep_params(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_PARAMS_KEY] = {name: value for name, value in params.items() if name != "Body"}

    def _count(self, model: Any, context: Mapping[str, Any], **_: Any) -> None:
        with self._lock:
            if not self._open:
                return
            call = AwsCall(
                service=model.service_model.service_id.hyphenize(),
                operation=model.name,
                params=context.get(_PARAMS_KEY, {}),
                thread=threading.current_thread().name,
            )
            for calls in self._open:
                calls.append(call)


def by_name(calls: list[AwsCall]) -> dict[str, int]:
    """How many of each call (``{"dynamodb.PutItem": 2, ...}``), most frequent first."""
    return dict(Counter(call.name for call in calls).most_common())
