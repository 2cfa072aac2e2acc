import json
from typing import Any

import pytest

from bucketscribe.clouds.aws.events import object_refs_from_message_body, object_refs_from_notification
from bucketscribe.clouds.huawei.events import object_refs_from_trigger
from bucketscribe.domain.notification import EventShapeError

pytestmark = pytest.mark.unit


def s3_record(
    key: str,
    *,
    name: str = "ObjectCreated:Put",
    size: int = 10,
    source: str = "s3",
    bucket: str = "recordings",
) -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventName": name,
        source: {
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "eTag": '"abc"', "versionId": "v1"},
        },
    }


def refs(payload: dict) -> list:
    return object_refs_from_notification(payload).refs


def test_keys_are_url_decoded_like_s3_and_moto_encode_them() -> None:
    # moto quote_plus-encodes '/' too; real S3 keeps it. Both must decode the same.
    for encoded in (
        "incoming/a+b%2Bc/%C3%BCn%C3%AF+c%C3%B4de.wav",
        "incoming%2Fa+b%2Bc%2F%C3%BCn%C3%AF+c%C3%B4de.wav",
    ):
        (ref,) = refs({"Records": [s3_record(encoded)]})
        assert ref.key == "incoming/a b+c/ünï côde.wav"
        assert ref.etag == "abc" and ref.version_id == "v1" and ref.bucket == "recordings"


def test_obs_shape_is_accepted_from_the_huawei_trigger_only() -> None:
    payload = {"Records": [s3_record("incoming/x.wav", source="obs", name="ObjectCreated:Post")]}
    (ref,) = object_refs_from_trigger(payload).refs
    assert ref.key == "incoming/x.wav"
    assert refs(payload) == []  # an S3 notification has no OBS records


def test_test_event_and_removals_yield_nothing() -> None:
    assert (
        object_refs_from_message_body(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})).refs
        == []
    )
    assert refs({"Records": [s3_record("incoming/x.wav", name="ObjectRemoved:Delete")]}) == []


def test_sns_wrapped_notification_is_unwrapped() -> None:
    inner = json.dumps({"Records": [s3_record("incoming/y.wav")]})
    (ref,) = object_refs_from_message_body(json.dumps({"Type": "Notification", "Message": inner})).refs
    assert ref.key == "incoming/y.wav"


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        json.dumps({"foo": 1}),
        "[" * 100_000 + "]" * 100_000,
        '{"Records": ' + "[" * 5000,
    ],
)
def test_unreadable_bodies_raise_a_named_error(body: str) -> None:
    with pytest.raises(EventShapeError):
        object_refs_from_message_body(body)


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ({"x": 1}, "has none of 's3'"),
        (s3_record("incoming/x.wav", bucket=""), "bucket.name"),
        (s3_record(""), "object.key"),
        (s3_record("+"), "empty key"),
        ({"s3": "not an object"}, "is not a bucket record"),
    ],
)
def test_a_poison_record_is_that_records_problem_and_the_others_go_on(
    bad: dict[str, Any], problem: str
) -> None:
    good = [s3_record("incoming/one.wav"), s3_record("incoming/two.wav")]
    notification = object_refs_from_notification({"Records": [good[0], bad, good[1]]})
    assert [ref.key for ref in notification.refs] == ["incoming/one.wav", "incoming/two.wav"]
    (reported,) = notification.problems
    assert reported.startswith("record 1 ") and problem in reported


def test_a_size_the_event_gets_wrong_is_only_a_hint() -> None:
    (ref,) = refs({"Records": [s3_record("incoming/x.wav", size=-1)]})
    assert ref.size is None


def test_same_upload_same_job_id_and_new_etag_new_job() -> None:
    a = refs({"Records": [s3_record("incoming/x.wav")]})[0]
    b = refs({"Records": [s3_record("incoming/x.wav")]})[0]
    c = a.model_copy(update={"version_id": None, "etag": "other"})
    assert a.job_id() == b.job_id()
    assert c.job_id() != a.job_id()
