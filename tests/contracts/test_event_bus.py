"""The event-bus port's contract: an event put on the bus reaches its subscribers as the event
document (``{"id", "type", "timestamp", "data"}``), the same for every bus; a bus that does not
take it raises ``EventNotPublished`` (and nothing arrives).

Implementations: the in-memory fake (what the unit tests use), EventBridge through boto3 against
moto server (a rule on the bus matching ``source: bucketscribe`` and the detail-type sends the
events to a queue, read back as a subscriber would), and SMN through ``huaweicloudsdksmn`` against
the SMN emulator, which checks the agency's signature and the request's documented shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr

from bucketscribe.clouds.aws.event_bus import EventBridgeBus
from bucketscribe.clouds.huawei.credentials import HuaweiCredentials
from bucketscribe.clouds.huawei.event_topic import SmnTopic
from bucketscribe.domain.job_events import Channel, JobEvent
from bucketscribe.ports.event_bus import DETAIL_TYPE, SOURCE, EventBus, EventNotPublished
from tests.fakes import InMemoryEventBus
from tests.integration.conftest import client
from tests.integration.smn_emulator import SmnEmulator
from tests.job_events import sample_event
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

PROJECT = "0123456789abcdef0123456789abcdef"
AGENCY = HuaweiCredentials(ak="EVENTSAGENCYAK", sk=SecretStr("agency-sk"), security_token=SecretStr("token"))


@dataclass
class BusUnderTest:
    bus: EventBus
    # What the bus's subscribers have received so far: event documents, in order.
    received: Callable[[], list[dict[str, Any]]]
    # The same bus, made unable to take events (one that is gone).
    refusing: EventBus
    # Where an EventBridge subscriber sees them: the envelope around the document.
    envelopes: Callable[[], list[dict[str, Any]]] = lambda: []


@pytest.fixture(scope="module")
def smn() -> Iterator[SmnEmulator]:
    with SmnEmulator(project_id=PROJECT, credentials=AGENCY) as emulator:
        yield emulator


def memory_bus() -> BusUnderTest:
    bus = InMemoryEventBus()
    refusing = InMemoryEventBus()
    refusing.refuse = 10
    return BusUnderTest(bus, lambda: list(bus.documents), refusing)


def eventbridge_bus(endpoint: str, name: str) -> BusUnderTest:
    events, sqs = client("events", endpoint), client("sqs", endpoint)
    events.create_event_bus(Name=name)
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {"source": [SOURCE], "detail-type": [DETAIL_TYPE]}
    events.put_rule(Name=name, EventBusName=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, EventBusName=name, Targets=[{"Id": "subscriber", "Arn": queue_arn}])
    seen: list[dict[str, Any]] = []

    def envelopes() -> list[dict[str, Any]]:
        answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        for message in answer.get("Messages", []):
            seen.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return list(seen)

    return BusUnderTest(
        EventBridgeBus(name, events),
        lambda: [envelope["detail"] for envelope in envelopes()],
        EventBridgeBus(f"{name}-gone", events),
        envelopes,
    )


def smn_topic(emulator: SmnEmulator, name: str) -> BusUnderTest:
    urn = emulator.create_topic(name)

    def topic(urn: str) -> SmnTopic:
        return SmnTopic(urn, project_id=PROJECT, endpoint=emulator.url, credentials=lambda: AGENCY)

    gone = f"urn:smn:{emulator.region}:{PROJECT}:{name}-gone"
    return BusUnderTest(topic(urn), lambda: emulator.documents(urn), topic(gone))


@pytest.fixture(params=["memory", "eventbridge", "smn"])
def under_test(request: pytest.FixtureRequest, unique_name: str) -> BusUnderTest:
    if request.param == "memory":
        return memory_bus()
    if request.param == "eventbridge":
        return eventbridge_bus(request.getfixturevalue("moto_endpoint"), unique_name)
    return smn_topic(request.getfixturevalue("smn"), unique_name)


def event(job_id: str = "0f" * 16, *, failed: bool = False) -> JobEvent:
    return sample_event(job_id, failed=failed, channel=Channel.EVENT_BUS)


def received(under_test: BusUnderTest, count: int) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []

    def arrived() -> bool:
        documents[:] = under_test.received()
        return len(documents) >= count

    wait_until(arrived, timeout_s=10, what=f"{count} events at the subscriber")
    return documents


def test_a_published_event_reaches_subscribers_as_the_event_document(under_test: BusUnderTest) -> None:
    completed, failed = event("a1" * 16), event("b2" * 16, failed=True)
    under_test.bus.publish(completed)
    under_test.bus.publish(failed)
    documents = received(under_test, 2)
    assert sorted(documents, key=lambda d: d["id"]) == [
        {"id": completed.id, **json.loads(completed.body())},
        {"id": failed.id, **json.loads(failed.body())},
    ]
    assert {d["type"] for d in documents} == {"transcript.completed", "transcript.failed"}
    assert documents[0]["data"]["key"].endswith("ünïcode.wav")


def test_an_event_the_bus_does_not_take_raises_and_reaches_nobody(under_test: BusUnderTest) -> None:
    with pytest.raises(EventNotPublished):
        under_test.refusing.publish(event())
    under_test.bus.publish(event("c3" * 16))
    assert [d["id"] for d in received(under_test, 1)] == [event("c3" * 16).id]


def test_eventbridge_names_the_source_the_detail_type_and_the_time_of_the_end(
    moto_endpoint: str, unique_name: str
) -> None:
    under_test = eventbridge_bus(moto_endpoint, unique_name)
    under_test.bus.publish(event())
    wait_until(lambda: bool(under_test.envelopes()), timeout_s=10, what="the event at the rule's queue")
    (envelope,) = under_test.envelopes()
    assert (envelope["source"], envelope["detail-type"]) == ("bucketscribe", "Transcript State Change")
    assert envelope["time"] == "2026-12-07T09:30:00Z"
    assert envelope["detail"]["id"] == event().id


def test_smn_subjects_name_the_event_type_and_requests_are_signed_with_the_agency_key(
    smn: SmnEmulator, unique_name: str
) -> None:
    urn = smn.create_topic(unique_name)
    SmnTopic(urn, project_id=PROJECT, endpoint=smn.url, credentials=lambda: AGENCY).publish(event())
    assert [p.subject for p in smn.published if p.topic_urn == urn] == ["bucketscribe transcript.completed"]
    stranger = HuaweiCredentials(ak="UNKNOWNAK", sk=SecretStr("wrong"))
    with pytest.raises(EventNotPublished, match="APIGW"):
        SmnTopic(urn, project_id=PROJECT, endpoint=smn.url, credentials=lambda: stranger).publish(event())


def test_eventbridge_entries_it_answers_as_failed_raise(moto_endpoint: str) -> None:
    """PutEvents answers 200 with a failed entry when it throttles one: not taken, so it raises."""
    from botocore.stub import Stubber

    events = client("events", moto_endpoint)
    failed = {
        "FailedEntryCount": 1,
        "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}],
    }
    with Stubber(events) as stub:
        stub.add_response("put_events", failed)
        with pytest.raises(EventNotPublished, match="ThrottlingException"):
            EventBridgeBus("jobs", events).publish(event())
