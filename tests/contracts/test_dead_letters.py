"""The dead-letter port's contract: the in-memory fake, the SQS dead-letter queue (boto3 against
moto server) and FunctionGraph's failure records in OBS (esdk-obs-python against moto server).

Each is handed letters in its own cloud's shape (an S3 notification as an SQS message body; a
FunctionGraph failure record around an OBS trigger event) and must give them back as the same
thing: the uploads they name, ``EventShapeError`` for a body that is no notification at all, gone
once deleted, and the same letter again (same id) while it is not. ``drain_dead_letters`` relies on
each: it skips letters by id, sets aside the unreadable ones, and, where the store counts how often
a letter was handed out, sets aside one that keeps failing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr

from bucketscribe.clouds.aws.dead_letters import SqsDeadLetters
from bucketscribe.clouds.huawei.failed_invocations import FailedInvocations
from bucketscribe.clouds.huawei.storage import ObsStorage
from bucketscribe.domain.notification import EventShapeError
from bucketscribe.ports.dead_letters import DeadLetter, DeadLetters
from tests.fakes import InMemoryDeadLetters
from tests.integration.conftest import client

pytestmark = pytest.mark.integration

BUCKET = "recordings"
FAILURE_PREFIX = "failed-invocations/submit/"


@dataclass
class DeadLettersUnderTest:
    letters: DeadLetters
    # Puts a letter naming these uploads, in the store's own cloud's shape.
    post_notification: Callable[[list[str]], None]
    # Puts a letter whose body is exactly this text.
    post_raw: Callable[[str], None]
    # Whether the store says how often it handed a letter out (SQS's ApproximateReceiveCount).
    counts_receives: bool


def bucket_notification(keys: list[str]) -> dict[str, Any]:
    """What S3 and OBS send when objects are created (keys URL-encoded, ``+`` for a space)."""
    return {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": key.replace(" ", "+"), "size": 10}},
            }
            for key in keys
        ]
    }


def failure_record(request_id: str, payload: object) -> bytes:
    """What FunctionGraph writes to the submit function's failure destination once every
    asynchronous retry of an upload event failed (user guide, "Asynchronous Notification Policy")."""
    return json.dumps(
        {
            "timestamp": "2026-11-20T09:00:00.000Z+08:00",
            "request_context": {"request_id": request_id, "condition": "RetriesExhausted"},
            "request_payload": payload,
            "response_context": {"status_code": 200, "function_error": "SubmitLater"},
        }
    ).encode()


def in_memory() -> DeadLettersUnderTest:
    fake = InMemoryDeadLetters()

    def post_raw(body: str) -> None:
        number = len(fake.letters)
        fake.letters.append(DeadLetter(message_id=f"m{number}", body=body, receipt=f"r{number}"))

    return DeadLettersUnderTest(
        fake, lambda keys: post_raw(json.dumps(bucket_notification(keys))), post_raw, counts_receives=False
    )


def sqs_queue(endpoint: str, name: str) -> DeadLettersUnderTest:
    sqs = client("sqs", endpoint)
    # No visibility timeout: a letter received and not deleted is offered again at once, as the
    # other stores do (and as a deployed queue does once the reconciler's next run comes).
    queue_url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "0"})["QueueUrl"]

    def post_raw(body: str) -> None:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)

    return DeadLettersUnderTest(
        SqsDeadLetters(queue_url, client("sqs", endpoint)),
        lambda keys: post_raw(json.dumps(bucket_notification(keys))),
        post_raw,
        counts_receives=True,
    )


def failure_records(endpoint: str, name: str) -> DeadLettersUnderTest:
    client("s3", endpoint).create_bucket(Bucket=name)
    storage = ObsStorage(
        server=endpoint,
        access_key_id="t",
        secret_access_key=SecretStr("t"),
        region="us-east-1",
        signature="v4",
        path_style=True,
    )
    written: list[str] = []

    def put(body: bytes) -> None:
        key = f"{FAILURE_PREFIX}{len(written):04d}.json"
        storage.put(name, key, body, content_type="application/json")
        written.append(key)

    def post_notification(keys: list[str]) -> None:
        # FunctionGraph keeps the event as it was given: an object, or JSON text of one.
        event = bucket_notification(keys)
        put(failure_record(f"request-{len(written)}", event if len(written) % 2 else json.dumps(event)))

    # A folder placeholder, as the OBS console makes one: no letter.
    storage.put(name, FAILURE_PREFIX, b"", content_type="application/octet-stream")
    return DeadLettersUnderTest(
        FailedInvocations(storage, name, FAILURE_PREFIX),
        post_notification,
        lambda body: put(body.encode()),
        counts_receives=False,
    )


@pytest.fixture(params=["memory", "sqs", "failed-invocations"])
def queue(request: pytest.FixtureRequest, unique_name: str) -> DeadLettersUnderTest:
    if request.param == "memory":
        return in_memory()
    endpoint = request.getfixturevalue("moto_endpoint")
    if request.param == "sqs":
        return sqs_queue(endpoint, unique_name)
    return failure_records(endpoint, unique_name)


def test_an_empty_store_hands_out_nothing(queue: DeadLettersUnderTest) -> None:
    assert queue.letters.receive(10) == []


def test_a_letter_reads_as_the_uploads_it_names(queue: DeadLettersUnderTest) -> None:
    queue.post_notification(["incoming/calls/a b.wav", "incoming/ünï.wav"])
    (letter,) = queue.letters.receive(10)
    notification = queue.letters.read(letter)
    assert [(ref.bucket, ref.key) for ref in notification.refs] == [
        (BUCKET, "incoming/calls/a b.wav"),
        (BUCKET, "incoming/ünï.wav"),
    ]
    assert notification.problems == []


@pytest.mark.parametrize("body", ["this is not a notification", '{"hello": "world"}', "[1, 2, 3]"])
def test_a_letter_that_is_no_notification_reads_as_an_event_shape_error(
    queue: DeadLettersUnderTest, body: str
) -> None:
    queue.post_raw(body)
    (letter,) = queue.letters.receive(10)
    with pytest.raises(EventShapeError):
        queue.letters.read(letter)


def test_a_deleted_letter_is_not_handed_out_again(queue: DeadLettersUnderTest) -> None:
    queue.post_notification(["incoming/first.wav"])
    queue.post_notification(["incoming/second.wav"])
    letters = queue.letters.receive(10)
    assert len(letters) == 2
    settled = next(
        letter for letter in letters if queue.letters.read(letter).refs[0].key == "incoming/first.wav"
    )
    queue.letters.delete(settled)
    (left,) = queue.letters.receive(10)
    assert left.message_id != settled.message_id
    assert queue.letters.read(left).refs[0].key == "incoming/second.wav"


def test_a_letter_left_in_place_comes_back_as_the_same_letter(queue: DeadLettersUnderTest) -> None:
    """A letter whose settling raised is left for the next run, which must know it by its id (and,
    where the store counts, how many times it was handed out before)."""
    queue.post_notification(["incoming/stuck.wav"])
    (first,) = queue.letters.receive(10)
    (again,) = queue.letters.receive(10)
    assert again.message_id == first.message_id
    assert queue.letters.read(again) == queue.letters.read(first)
    if queue.counts_receives:
        assert (first.receive_count, again.receive_count) == (1, 2)
    else:
        assert (first.receive_count, again.receive_count) == (None, None)


def test_no_more_letters_are_handed_out_than_asked_for(queue: DeadLettersUnderTest) -> None:
    for name in ("a", "b", "c"):
        queue.post_notification([f"incoming/{name}.wav"])
    assert 1 <= len(queue.letters.receive(2)) <= 2
