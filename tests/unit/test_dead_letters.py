"""Notifications that failed every delivery end as answers: submitted now, or a FAILED job saying why."""

import json

import pytest

from bucketscribe.domain.job import Job, JobState
from bucketscribe.domain.notification import Notification
from bucketscribe.domain.transcript import Transcript
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.pipeline.steps.dead_letters import MAX_RECEIVES
from bucketscribe.pipeline.submit import submit_uploads
from bucketscribe.ports.dead_letters import DeadLetter, DeadLetters
from bucketscribe.ports.storage import ObjectInfo
from tests.audio import tone_wav
from tests.fakes import FakePorts, FakeProvider, InMemoryDeadLetters

pytestmark = pytest.mark.unit


def notification(*keys: str) -> str:
    records = [
        {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "recordings"}, "object": {"key": k}}}
        for k in keys
    ]
    return json.dumps({"Records": records})


def test_a_dead_notification_is_tried_once_more_and_then_removed(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ports.storage.add("recordings", "incoming/late.wav", tone_wav(1))
    ports.dead_letters = InMemoryDeadLetters([notification("incoming/late.wav")])
    report = reconcile(ports)
    assert report.dead_letters == 1 and ports.dead_letters.deleted == ["m0"]
    (job,) = ports.jobs.jobs.values()
    assert job.state is JobState.SUBMITTED and len(provider.submissions) == 1


def test_an_upload_that_still_cannot_be_accepted_gets_a_failed_job_and_a_report(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ports.storage.add("recordings", "incoming/stuck.wav", tone_wav(1))
    ports.dead_letters = InMemoryDeadLetters([notification("incoming/stuck.wav")])
    real_create = ports.jobs.create
    calls = iter([ConnectionError("job store unavailable")])

    def flaky_create(job: Job) -> bool:
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


def test_unreadable_dead_notifications_are_removed_and_good_records_beside_bad_ones_proceed(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ports.storage.add("recordings", "incoming/good.wav", tone_wav(1))
    body = json.loads(notification("incoming/good.wav"))
    body["Records"].append({"s3": {"bucket": {"name": ""}, "object": {"key": "x.wav"}}})
    ports.dead_letters = InMemoryDeadLetters(["not json at all", json.dumps(body)])
    report = reconcile(ports)
    assert (report.dead_letters, report.dead_letters_set_aside) == (1, 1)
    assert ports.dead_letters.deleted == ["m0", "m1"]
    assert [job.state for job in ports.jobs.jobs.values()] == [JobState.SUBMITTED]


def test_a_dead_notification_of_an_upload_with_a_job_leaves_that_job_to_the_reconciler(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ports.storage.add("recordings", "incoming/known.wav", tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key="incoming/known.wav")], ports)
    ports.dead_letters = InMemoryDeadLetters([notification("incoming/known.wav")])
    reconcile(ports)
    assert ports.jobs.get(result.job_id).state is JobState.SUBMITTED and len(provider.submissions) == 1


class StorageRefusal(Exception):
    """What boto3 raises for a HEAD S3 answers 400 (SSE-C object) or 403 (revoked permissions)."""


def refuse_heads_of(ports: FakePorts, key_part: str) -> None:
    real_head = ports.storage.head

    def head(bucket: str, key: str) -> ObjectInfo | None:
        if key_part in key:
            raise StorageRefusal("An error occurred (400) when calling the HeadObject operation: Bad Request")
        return real_head(bucket, key)

    ports.storage.head = head


def test_an_unreadable_upload_is_settled_as_a_failed_job_and_the_run_goes_on(
    ports: FakePorts, provider: FakeProvider
) -> None:
    # An object stored with a customer-provided key answers 400 to every HEAD we make: before,
    # that error escaped the reconciler on every run for the DLQ's whole retention.
    ports.storage.add("recordings", "incoming/sealed.wav", tone_wav(1))
    ports.storage.add("recordings", "incoming/after.wav", tone_wav(1))
    ports.storage.add("recordings", "incoming/due.wav", tone_wav(1))
    refuse_heads_of(ports, "sealed")
    (due,) = submit_uploads([ObjectRef(bucket="recordings", key="incoming/due.wav")], ports)
    provider.finish(provider.tasks_for(due.job_id)[0], Transcript(provider="sis", segments=[]))
    ports.clock.now += ports.limits.first_check_after
    ports.dead_letters = InMemoryDeadLetters(
        [notification("incoming/sealed.wav"), notification("incoming/after.wav")]
    )
    report = reconcile(ports)
    assert ports.dead_letters.deleted == ["m0", "m1"] and report.dead_letters == 2
    sealed = next(job for job in ports.jobs.jobs.values() if job.source.key == "incoming/sealed.wav")
    assert sealed.state is JobState.FAILED and "cannot be read" in sealed.error.message
    assert "HeadObject" in sealed.error.message
    after = next(job for job in ports.jobs.jobs.values() if job.source.key == "incoming/after.wav")
    assert after.state is JobState.SUBMITTED
    # ...and the run went on to the jobs that were due.
    assert report.finished == 1 and ports.jobs.get(due.job_id).state is JobState.DONE


def test_an_error_report_the_bucket_refuses_does_not_keep_the_letter(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ports.storage.add("recordings", "incoming/sealed.wav", tone_wav(1))
    refuse_heads_of(ports, "sealed")

    def put(bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        raise StorageRefusal("An error occurred (403) when calling the PutObject operation: Forbidden")

    ports.storage.put = put
    ports.dead_letters = InMemoryDeadLetters([notification("incoming/sealed.wav")])
    reconcile(ports)
    (job,) = ports.jobs.jobs.values()
    assert job.state is JobState.FAILED and ports.dead_letters.deleted == ["m0"]


@pytest.mark.parametrize(
    "body",
    [
        "\x00\x01 binary garbage",
        json.dumps({"Records": [{"s3": {"bucket": {"name": "not a bucket!"}, "object": {"key": "a.wav"}}}]}),
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "recordings"}),
        json.dumps([1, 2, 3]),
    ],
)
def test_garbage_is_set_aside_at_once(ports: FakePorts, provider: FakeProvider, body: str) -> None:
    ports.dead_letters = InMemoryDeadLetters([body])
    report = reconcile(ports)
    assert ports.dead_letters.deleted == ["m0"] and report.units_failed == 0
    assert ports.jobs.jobs == {} and provider.submissions == []


def test_a_letter_whose_settling_raises_stays_until_its_receives_run_out(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ports.storage.add("recordings", "incoming/a.wav", tone_wav(1))
    ports.storage.add("recordings", "incoming/b.wav", tone_wav(1))
    ports.dead_letters = InMemoryDeadLetters([notification("incoming/a.wav"), notification("incoming/b.wav")])
    real_create = ports.jobs.create

    def create(job: Job) -> bool:
        if job.source.key == "incoming/a.wav":
            raise ConnectionError("job store unavailable for this key's partition")
        return real_create(job)

    ports.jobs.create = create
    report = reconcile(ports)
    # a.wav raised (left for the next run); b.wav behind it was settled all the same.
    assert ports.dead_letters.deleted == ["m1"] and report.units_failed == 1 and report.dead_letters == 1
    ports.dead_letters.letters[0] = ports.dead_letters.letters[0].model_copy(
        update={"receive_count": MAX_RECEIVES}
    )
    report = reconcile(ports)
    assert ports.dead_letters.deleted == ["m1", "m0"] and report.dead_letters_set_aside == 1


def test_an_unreachable_dead_letter_queue_does_not_stop_the_due_jobs(
    ports: FakePorts, provider: FakeProvider
) -> None:
    class Unreachable(DeadLetters):
        def receive(self, max_messages: int) -> list[DeadLetter]:
            raise ConnectionError("SQS endpoint unreachable")

        def read(self, letter: DeadLetter) -> Notification:
            raise AssertionError("nothing was received")

        def delete(self, letter: DeadLetter) -> None:
            raise AssertionError("nothing was received")

    ports.storage.add("recordings", "incoming/due.wav", tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key="incoming/due.wav")], ports)
    provider.finish(provider.tasks_for(result.job_id)[0], Transcript(provider="sis", segments=[]))
    ports.clock.now += ports.limits.first_check_after
    ports.dead_letters = Unreachable()
    report = reconcile(ports)
    assert report.units_failed == 1 and report.finished == 1
