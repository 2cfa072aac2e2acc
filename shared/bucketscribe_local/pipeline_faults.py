"""Faults on our side of the wire, for the soak and the e2e tests: the worker dies right after a
provider accepted its submission, the job store goes away for a while, and storage refuses some
keys (``storage_errors`` in ``BUCKETSCRIBE_LOCAL_FAULTS``).

The emulators' fault knobs (local/faults.py) break the providers; these break us, the way a
Lambda instance that is killed mid-invocation and a DynamoDB outage would — through the same
code paths: the crash escapes every ``except Exception`` (it is a ``BaseException``, like the
runtime tearing the process down), and the outage answers the DynamoDB client with HTTP 503
(botocore retries, then raises, as it does against the real service).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from bucketscribe.domain.profile import Profile
from bucketscribe.ports.provider import Provider, SubmitItem, SubmitReceipt, TaskProvider
from bucketscribe.ports.storage import UNREADABLE_STATUSES, ObjectUnreadable


class SimulatedCrash(BaseException):
    """The function instance died here (the invocation ends with nothing reported back)."""


class StorageErrorRule(BaseModel):
    """Storage answering an HTTP error for some keys, as an object uploaded with a customer-provided
    encryption key answers 400 to a HEAD without it, and revoked permissions answer 403."""

    model_config = ConfigDict(extra="forbid")

    op: Literal["head", "get", "put"]
    key_contains: str = Field(min_length=1)
    status: int = Field(default=400, ge=400, le=599)


class PipelineFaultPlan(BaseModel):
    crash_after_submit_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    storage_errors: list[StorageErrorRule] = Field(default_factory=list)
    seed: int | None = None


class StorageRefused(RuntimeError):
    """What the storage SDK raises for an HTTP error answer (botocore's ClientError reads alike)."""


# Which of the storage port's calls each rule's operation stands for.
_STORAGE_OPS = {
    "head": ("head",),
    "get": ("get", "read_head", "download"),
    "put": ("put", "upload", "delete"),
}


class _RefusingStorage:
    """The stack's storage port, answering the plan's HTTP errors for the keys it names."""

    def __init__(self, inner: Any, faults: PipelineFaults) -> None:
        self.inner = inner  # the cloud's own adapter
        self._faults = faults

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        rules = [rule for rule in self._faults.plan.storage_errors if name in _STORAGE_OPS[rule.op]]
        if not rules:
            return method

        def refusing(bucket: str, key: str, *args: Any, **kwargs: Any) -> Any:
            for rule in rules:
                if rule.key_contains in key:
                    with self._faults._lock:
                        self._faults.counters.storage_requests_refused += 1
                    if name == "head" and rule.status in UNREADABLE_STATUSES:
                        raise ObjectUnreadable(bucket, key, rule.status)  # as the adapters answer
                    raise StorageRefused(
                        f"An error occurred ({rule.status}) when calling the {name} operation on {key!r} "
                        "(injected by BUCKETSCRIBE_LOCAL_FAULTS)"
                    )
            return method(bucket, key, *args, **kwargs)

        return refusing


class PipelineFaultCounters(BaseModel):
    crashes_after_submit: int = 0
    job_store_requests_refused: int = 0
    storage_requests_refused: int = 0


class _CrashingProvider:
    """A task provider whose worker dies after the provider accepted a submission, now and then.

    Everything else is the inner provider's (attribute lookups pass through), so the pipeline's
    capability checks (``isinstance`` against the runtime-checkable ports) see what it has."""

    def __init__(self, inner: TaskProvider, faults: PipelineFaults) -> None:
        self._inner = inner
        self._faults = faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def submit(self, items: Sequence[SubmitItem], profile: Profile) -> list[SubmitReceipt]:
        receipts = self._inner.submit(items, profile)
        self._faults.maybe_crash()
        return receipts


class _Providers(Mapping[str, Provider]):
    def __init__(self, inner: Mapping[str, Provider], faults: PipelineFaults) -> None:
        self._inner = inner
        self._faults = faults

    def __getitem__(self, name: str) -> Provider:
        provider = self._inner[name]
        if not isinstance(provider, TaskProvider):
            return provider  # nothing is submitted, so there is no moment to crash after
        return cast(Provider, _CrashingProvider(provider, self._faults))

    def __iter__(self) -> Iterator[str]:
        return iter(self._inner)

    def __len__(self) -> int:
        return len(self._inner)


class PipelineFaults:
    def __init__(self, plan: PipelineFaultPlan | None = None) -> None:
        self.plan = plan or PipelineFaultPlan()
        self.counters = PipelineFaultCounters()
        self._random = random.Random(self.plan.seed)
        self._lock = threading.Lock()
        self._outage_until = 0.0

    def set_plan(self, plan: PipelineFaultPlan) -> None:
        with self._lock:
            self.plan = plan
            self._random = random.Random(plan.seed)

    def maybe_crash(self) -> None:
        with self._lock:
            crash = (
                self.plan.crash_after_submit_rate > 0
                and self._random.random() < self.plan.crash_after_submit_rate
            )
            if crash:
                self.counters.crashes_after_submit += 1
        if crash:
            raise SimulatedCrash("the worker died after the provider accepted the submission")

    def job_store_outage(self, seconds: float) -> None:
        """From now on, for ``seconds``, every job-store request is answered 503."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds

    @property
    def job_store_down(self) -> bool:
        return time.monotonic() < self._outage_until

    def install(self, ports: Any) -> None:
        """Wrap the providers of ``ports`` and hook the job store's DynamoDB client."""
        ports.providers = _Providers(ports.providers, self)
        ports.storage = _RefusingStorage(ports.storage, self)
        client = getattr(ports.jobs, "client", None)
        if client is not None:
            client.meta.events.register("before-send.dynamodb.*", self._refuse_when_down)

    def _refuse_when_down(self, request: Any, **_: Any) -> Any:
        if not self.job_store_down:
            return None
        from botocore.awsrequest import AWSResponse, HTTPHeaders

        with self._lock:
            self.counters.job_store_requests_refused += 1
        body = (
            b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"simulated outage"}'
        )
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        return AWSResponse(request.url, 503, headers, _Raw(body))


class _Raw:
    """The minimal raw-body object botocore reads a response through."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any) -> bytes:
        body, self._body = self._body, b""
        return body
