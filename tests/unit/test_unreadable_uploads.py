"""An upload the store will not let us read (encrypted with its uploader's own key, SSE-C: 400 to a
HEAD) ends FAILED with that reason, once, instead of being retried until its deadline: found by the
soak, where such uploads stayed SUBMITTED for as long as it ran. A 403 is retried: a HEAD's answer
cannot tell a revoked permission from our own key failing for a moment."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bucketscribe.domain.job import AttemptState, JobState
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.complete import CompletionOutcome, complete_callback
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.pipeline.submit import submit_uploads
from bucketscribe.ports.storage import ObjectInfo, ObjectUnreadable
from tests.audio import tone_wav
from tests.fakes import FakePorts, FakeProvider, claim_from_callback_url
from tests.unit.test_complete_jobs import transcript

pytestmark = pytest.mark.unit

BUCKET = "recordings"
KEY = "incoming/calls/sealed.wav"


def seal(ports: FakePorts, monkeypatch: pytest.MonkeyPatch, status: int) -> None:
    """From now on the store answers ``status`` to a HEAD of the upload (and only of it)."""
    head = ports.storage.head

    def refusing(bucket: str, key: str) -> ObjectInfo | None:
        if key == KEY:
            raise ObjectUnreadable(bucket, key, status)
        return head(bucket, key)

    monkeypatch.setattr(ports.storage, "head", refusing)


@pytest.mark.parametrize("status", [400])
def test_a_result_for_an_upload_that_can_no_longer_be_read_fails_the_job_with_the_reason(
    ports: FakePorts, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    ports.storage.add(BUCKET, KEY, tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket=BUCKET, key=KEY)], ports)
    job = ports.jobs.get(result.job_id)
    assert job is not None and job.state is JobState.SUBMITTED
    seal(ports, monkeypatch, status)
    provider.finish(job.provider_task_id, transcript())
    items, _ = provider.submissions[-1]
    _, claim = claim_from_callback_url(items[0].callback_url)
    completion = complete_callback(claim, lambda: None, ports)
    assert completion.outcome is CompletionOutcome.FAILED
    failed = ports.jobs.get(job.id)
    assert failed.state is JobState.FAILED and failed.error.code == "UPLOAD_UNREADABLE"
    assert f"HTTP {status}" in failed.error.message
    # Nothing but the reason is written: no transcript of an upload we cannot tell is current.
    assert ports.storage.keys("transcripts/") == ["transcripts/calls/sealed.wav.error.json"]
    report = json.loads(ports.storage.get(BUCKET, "transcripts/calls/sealed.wav.error.json"))
    assert report["error"]["code"] == "UPLOAD_UNREADABLE"


def test_a_repeated_callback_while_another_worker_finishes_leaves_that_worker_to_it(
    ports: FakePorts, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key is asked about while the lease is taken: a callback that does not get the lease
    (another worker is writing the outputs) answers BUSY whatever the key says, and fails nothing."""
    ports.storage.add(BUCKET, KEY, tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket=BUCKET, key=KEY)], ports)
    job = ports.jobs.get(result.job_id)
    assert job is not None and job.state is JobState.SUBMITTED
    held = job.begin_finishing(ports.clock(), until=ports.clock() + timedelta(minutes=1), owner="another")
    assert ports.jobs.save(held)
    seal(ports, monkeypatch, 400)
    provider.finish(job.provider_task_id, transcript())
    items, _ = provider.submissions[-1]
    _, claim = claim_from_callback_url(items[0].callback_url)
    assert complete_callback(claim, lambda: None, ports).outcome is CompletionOutcome.BUSY
    still = ports.jobs.get(job.id)
    assert still is not None and still.state is held.state and still.error is None
    assert ports.storage.keys("transcripts/") == []


def test_an_upload_sent_again_that_can_no_longer_be_read_fails_instead_of_waiting(
    ports: FakePorts, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider.capacity = 0  # the provider's quota is full: the upload waits in the queue
    ports.storage.add(BUCKET, KEY, tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket=BUCKET, key=KEY)], ports)
    seal(ports, monkeypatch, 400)
    provider.capacity = None
    ports.clock.now += ports.limits.max_check_interval
    reconcile(ports)
    failed = ports.jobs.get(result.job_id)
    assert failed.state is JobState.FAILED and failed.error.code == "UPLOAD_UNREADABLE"
    assert all(attempt.state is not AttemptState.ACCEPTED for attempt in failed.attempts)
    assert provider.submissions == []  # nothing was sent for it


@pytest.mark.parametrize(("status", "unreadable"), [(400, True), (403, False), (500, False)])
def test_s3_says_which_refusals_mean_the_upload_cannot_be_read(status: int, unreadable: bool) -> None:
    import boto3
    from botocore.stub import Stubber

    from bucketscribe.clouds.aws.storage import S3Storage

    client = boto3.client("s3", region_name="eu-central-1", aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(client) as stub:
        stub.add_client_error("head_object", service_error_code=str(status), http_status_code=status)
        storage = S3Storage(client)
        expected = ObjectUnreadable if unreadable else Exception
        with pytest.raises(expected) as raised:
            storage.head(BUCKET, KEY)
    assert isinstance(raised.value, ObjectUnreadable) is unreadable
