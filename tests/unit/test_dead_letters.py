"""Notifications that failed every delivery end as answers: submitted now, or a FAILED job saying why."""

import json

import pytest

from bucketscribe.job import JobState
from bucketscribe.model import ObjectRef
from bucketscribe.pipeline.reconcile import reconcile
from tests.audio import tone_wav
from tests.fakes import InMemoryDeadLetters

pytestmark = pytest.mark.unit


def notification(*keys: str) -> str:
    records = [
        {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "recordings"}, "object": {"key": k}}}
        for k in keys
    ]
    return json.dumps({"Records": records})


def test_a_dead_notification_is_tried_once_more_and_then_removed(ports, provider):
    ports.storage.add("recordings", "incoming/late.wav", tone_wav(1))
    ports.dead_letters = InMemoryDeadLetters([notification("incoming/late.wav")])
    report = reconcile(ports)
    assert report.dead_letters == 1 and ports.dead_letters.deleted == ["m0"]
    (job,) = ports.jobs.jobs.values()
    assert job.state is JobState.SUBMITTED and len(provider.submissions) == 1


def test_an_upload_that_still_cannot_be_accepted_gets_a_failed_job_and_a_report(ports, provider):
    ports.storage.add("recordings", "incoming/stuck.wav", tone_wav(1))
    ports.dead_letters = InMemoryDeadLetters([notification("incoming/stuck.wav")])
    real_create = ports.jobs.create
    calls = iter([ConnectionError("job store unavailable")])

    def flaky_create(job):
        failure = next(calls, None)
        if failure:
            raise failure  # the last delivery fails like the five before it
        return real_create(job)

    ports.jobs.create = flaky_create
    reconcile(ports)
    (job,) = ports.jobs.jobs.values()
    assert job.state is JobState.FAILED and job.error.code == "NEVER_SUBMITTED"
    assert "failed every delivery (message m0" in job.error.message
    report = json.loads(ports.storage.get("recordings", "transcripts/stuck.wav.error.json"))
    assert report["error"]["code"] == "NEVER_SUBMITTED"
    assert ports.dead_letters.deleted == ["m0"] and provider.submissions == []


def test_unreadable_dead_notifications_are_removed_and_good_records_beside_bad_ones_proceed(ports, provider):
    ports.storage.add("recordings", "incoming/good.wav", tone_wav(1))
    body = json.loads(notification("incoming/good.wav"))
    body["Records"].append({"s3": {"bucket": {"name": ""}, "object": {"key": "x.wav"}}})
    ports.dead_letters = InMemoryDeadLetters(["not json at all", json.dumps(body)])
    assert reconcile(ports).dead_letters == 2
    assert ports.dead_letters.deleted == ["m0", "m1"]
    assert [job.state for job in ports.jobs.jobs.values()] == [JobState.SUBMITTED]


def test_a_dead_notification_of_an_upload_with_a_job_leaves_that_job_to_the_reconciler(ports, provider):
    from bucketscribe.pipeline.submit import submit_uploads

    ports.storage.add("recordings", "incoming/known.wav", tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key="incoming/known.wav")], ports)
    ports.dead_letters = InMemoryDeadLetters([notification("incoming/known.wav")])
    reconcile(ports)
    assert ports.jobs.get(result.job_id).state is JobState.SUBMITTED and len(provider.submissions) == 1
