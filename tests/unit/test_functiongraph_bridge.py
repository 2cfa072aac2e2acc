"""The local stand-ins for FunctionGraph's asynchronous invocation and OBS trigger behave as
FunctionGraph documents them: retries of a failed event, then a failure record; one event per
record, in the OBS trigger's shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from bucketscribe_local.functiongraph_bridge import AsyncInvoker, LocalFunctionGraphContext, obs_trigger_event
from pydantic import SecretStr

from bucketscribe.clouds.aws.events import object_refs_from_notification
from bucketscribe.clouds.huawei.credentials import HuaweiCredentials
from bucketscribe.domain.upload import ObjectRef

pytestmark = pytest.mark.unit

AGENCY = HuaweiCredentials(ak="ak", sk=SecretStr("sk"))


class Flaky:
    """A function that fails its first ``failures`` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[dict[str, Any], str]] = []

    def __call__(self, event: dict[str, Any], context: LocalFunctionGraphContext) -> None:
        self.calls.append((event, context.getRequestID()))
        if len(self.calls) <= self.failures:
            raise RuntimeError(f"failure {len(self.calls)}")


@pytest.fixture
def records() -> list[dict[str, Any]]:
    return []


def started(function: Flaky, records: list[dict[str, Any]]) -> AsyncInvoker:
    return AsyncInvoker(
        function,
        lambda request_id: LocalFunctionGraphContext("bucketscribe-submit", AGENCY, request_id=request_id),
        on_failure=records.append,
        workers=1,
        retry_delay_s=0.0,
    ).start()


@pytest.fixture
def invoker_for() -> Iterator[list[AsyncInvoker]]:
    running: list[AsyncInvoker] = []
    yield running
    for invoker in running:
        invoker.stop()


def test_a_failed_event_is_retried_until_it_succeeds(
    invoker_for: list[AsyncInvoker], records: list[Any]
) -> None:
    function = Flaky(failures=2)
    invoker_for.append(invoker := started(function, records))
    request_id = invoker.invoke({"Records": []})
    assert invoker.wait_idle(timeout_s=30)
    assert [rid for _, rid in function.calls] == [request_id] * 3 and records == []


def test_an_event_that_fails_every_retry_becomes_functiongraphs_failure_record(
    invoker_for: list[AsyncInvoker], records: list[dict[str, Any]]
) -> None:
    function = Flaky(failures=10)
    invoker_for.append(invoker := started(function, records))
    request_id = invoker.invoke({"Records": [{"not": "readable"}]})
    assert invoker.wait_idle(timeout_s=30)
    assert len(function.calls) == 4 and invoker.failures == 1  # the call and 3 retries
    (record,) = records
    assert record["request_context"]["request_id"] == request_id
    assert record["request_context"]["approximate_invoke_count"] == 4
    assert record["request_context"]["function_urn"].endswith(":bucketscribe-submit:latest")
    assert json.loads(record["request_payload"]) == {"Records": [{"not": "readable"}]}
    assert record["response_context"]["function_error"] == "RuntimeError: failure 4"


def test_a_paused_invoker_queues_events_and_runs_them_on_resume(
    invoker_for: list[AsyncInvoker], records: list[Any]
) -> None:
    function = Flaky(failures=0)
    invoker_for.append(invoker := started(function, records))
    invoker.pause()
    invoker.invoke({"Records": []})
    assert not invoker.wait_idle(timeout_s=0.2) and function.calls == []
    invoker.resume()
    assert invoker.wait_idle(timeout_s=30) and len(function.calls) == 1


def test_a_bucket_record_becomes_the_obs_trigger_event_that_names_the_same_object() -> None:
    moto_record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "configurationId": "uploads",
            "bucket": {"name": "recordings", "arn": "arn:aws:s3:::recordings"},
            "object": {"key": "incoming/a+b%2Bc/%C3%BCn%C3%AF.wav", "size": 12, "eTag": "e1"},
        },
    }
    event = obs_trigger_event(moto_record)
    (record,) = event["Records"]
    assert record["eventVersion"] == "2.0" and record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["ownerIdentity"] == {"PrincipalId": "local"}
    (ref,) = object_refs_from_notification(event).refs
    assert ref == ObjectRef(bucket="recordings", key="incoming/a b+c/ünï.wav", size=12, etag="e1")
