"""The batch pipeline end to end on the local stack.

Upload to the moto bucket → S3 notification → SQS → the real submit handler → the SIS
emulator (through the real huaweicloudsdksis SDK) → a real HTTP callback → API Gateway
events for the real callback handler → outputs in the bucket.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import srt
import webvtt

from bucketscribe.callback_auth import CallbackSigner
from bucketscribe.job import AttemptState, JobState
from bucketscribe.local.faults import FaultPlan
from bucketscribe.local.stack import LocalStack
from bucketscribe.model import ObjectRef, Transcript
from tests.audio import tone_wav

pytestmark = pytest.mark.e2e

FIXED_TEXT = "this is a fixed transcript from the instant engine"
TIMEOUT_S = 60  # generous: the waits return as soon as the jobs are final


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def transcribe(stack: LocalStack, key: str, body: bytes) -> tuple[ObjectRef, Any]:
    ref = stack.upload(body, key)
    jobs = stack.wait_for_jobs([ref], timeout_s=TIMEOUT_S)
    assert key in jobs, f"no job was created for {key}"
    return ref, jobs[key]


def notification_body(ref: ObjectRef) -> str:
    """An S3 event notification for ``ref``, keys encoded the way S3 encodes them."""
    from urllib.parse import quote_plus

    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": ref.bucket},
            "object": {"key": quote_plus(ref.key, safe="/"), "size": ref.size, "eTag": ref.etag},
        },
    }
    return json.dumps({"Records": [record]})


def signer() -> CallbackSigner:
    return CallbackSigner(os.environ["BUCKETSCRIBE_CALLBACK_SECRET"].encode())


def callback_url(stack: LocalStack, job_id: str, attempt: int = 1) -> str:
    """A genuine callback URL of the job's attempt, as the submission handed it to SIS."""
    expires = datetime.now(UTC) + timedelta(hours=1)
    return signer().sis_callback_url(stack.callback_url, job_id, attempt, expires)


def test_an_upload_with_an_awkward_key_becomes_transcripts_beside_it(stack):
    key = "incoming/a b+c/ünï côde.wav"
    _, job = transcribe(stack, key, tone_wav(1))
    assert job.state is JobState.DONE, job.error
    base = "transcripts/a b+c/ünï côde.wav"
    assert sorted(job.outputs) == sorted(f"{base}.{s}" for s in ("sis.json", "json", "txt", "srt", "vtt"))
    transcript = Transcript.model_validate_json(stack.read_output(f"{base}.json"))
    assert transcript.text == FIXED_TEXT and transcript.source.key == key and transcript.provider == "sis"
    assert FIXED_TEXT in stack.read_output(f"{base}.txt").decode()
    cues = list(srt.parse(stack.read_output(f"{base}.srt").decode()))
    assert " ".join(c.content.split("] ")[-1] for c in cues).replace("\n", " ") == FIXED_TEXT
    vtt = webvtt.from_buffer(__import__("io").StringIO(stack.read_output(f"{base}.vtt").decode()))
    assert len(vtt.captions) == len(cues)


def test_the_same_notification_three_times_makes_one_sis_job(stack):
    before = stack.sis.backend.counters().submissions_received
    ref = stack.upload(tone_wav(1.5), "incoming/dup/thrice.wav")
    sqs = stack.client("sqs")
    for _ in range(2):  # the upload's own notification plus two re-deliveries of it
        sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=notification_body(ref))
    jobs = stack.wait_for_jobs([ref], timeout_s=TIMEOUT_S)
    assert jobs[ref.key].state is JobState.DONE
    assert stack.wait_queue_idle(timeout_s=TIMEOUT_S)
    assert stack.sis.backend.counters().submissions_received - before == 1


def test_our_own_outputs_start_no_job(stack):
    _, job = transcribe(stack, "incoming/loop/check.wav", tone_wav(1))
    assert job.state is JobState.DONE
    submissions = stack.sis.backend.counters().submissions_received
    # The bucket notifies about every key, so each output was offered to the submit handler.
    stack.upload(tone_wav(1), "transcripts/loop/planted.wav")
    assert stack.wait_queue_idle(timeout_s=TIMEOUT_S)
    assert stack.sis.backend.counters().submissions_received == submissions
    for key in stack.list_keys("transcripts/loop/"):
        head = stack.client("s3").head_object(Bucket=stack.bucket, Key=key)
        output_ref = ObjectRef(bucket=stack.bucket, key=key, etag=head["ETag"].strip('"'))
        assert stack.job(output_ref.job_id()) is None, f"{key} started a job"


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("empty.wav", b"", "the file is empty (0 bytes)"),
        ("notes.wav", b"Meeting notes: call the customer back on Monday.\n", "look like text"),
    ],
)
def test_bad_uploads_get_an_error_file_and_a_failed_job_with_the_reason(stack, name, body, reason):
    key = f"incoming/bad/{name}"
    _, job = transcribe(stack, key, body)
    assert job.state is JobState.FAILED and reason in job.error.message
    report = json.loads(stack.read_output(f"transcripts/bad/{name}.error.json"))
    assert report["source"]["key"] == key and reason in report["error"]["message"]
    status, view = http(
        "GET",
        f"{stack.callback_url}/jobs/{job.id}",
        headers={"Authorization": f"Bearer {stack.status_token}"},
    )
    assert status == 200 and view["state"] == "FAILED" and reason in view["error"]["message"]
    assert view["key"] == key


def test_job_status_needs_the_token_and_reveals_nothing_without_it(stack):
    _, job = transcribe(stack, "incoming/status/one.wav", tone_wav(1))
    url = f"{stack.callback_url}/jobs/{job.id}"
    assert http("GET", url)[0] == 401
    assert http("GET", url, headers={"Authorization": "Bearer wrong"})[0] == 401
    status, view = http("GET", url, headers={"Authorization": f"Bearer {stack.status_token}"})
    assert status == 200 and view["state"] == "DONE" and view["outputs"]
    assert "token" not in json.dumps(view)
    missing = http(
        "GET", f"{stack.callback_url}/jobs/nope", headers={"Authorization": f"Bearer {stack.status_token}"}
    )
    assert missing == (404, {"message": "Not found"})


def test_a_job_is_found_by_its_upload_without_its_etag(stack):
    key = "incoming/status/by key ü.wav"
    first, _ = transcribe(stack, key, tone_wav(1))
    second, job = transcribe(stack, key, tone_wav(2))  # a re-upload of the same key
    headers = {"Authorization": f"Bearer {stack.status_token}"}
    query = urllib.parse.urlencode({"bucket": stack.bucket, "key": key})
    status, found = http("GET", f"{stack.callback_url}/jobs?{query}", headers=headers)
    assert status == 200, found
    assert found["latest"]["id"] == job.id == second.job_id() and found["earlier"] == [first.job_id()]
    assert found["latest"]["state"] == "DONE" and found["latest"]["key"] == key
    (attempt,) = found["latest"]["attempts"]
    assert attempt["state"] == "ACCEPTED" and attempt["provider_task_id"]
    assert http("GET", f"{stack.callback_url}/jobs?{query}")[0] == 401
    missing = urllib.parse.urlencode({"bucket": stack.bucket, "key": "incoming/status/none.wav"})
    assert http("GET", f"{stack.callback_url}/jobs?{missing}", headers=headers)[0] == 404
    assert http("GET", f"{stack.callback_url}/jobs?bucket=only", headers=headers)[0] == 400


FORGED = json.dumps(
    {
        "job_id": "forged",
        "status": "FINISHED",
        "audio_duration": 1000,
        "segments": [{"start_time": 0, "end_time": 900, "result": {"text": "FORGED TEXT"}}],
    }
).encode()


def test_forged_callbacks_are_refused_or_ignored(stack):
    stack.sis.set_faults(FaultPlan(processing_delay_s=2.0))
    try:
        ref = stack.upload(tone_wav(1), "incoming/forged/target.wav")
        job_id = ref.job_id()
        base = f"{stack.callback_url}/callbacks/sis"
        # Wrong token and unknown job: the same 404, and nothing is fetched or written.
        assert http("POST", f"{base}/{job_id}?attempt=1&exp=4102444800&token={'0' * 64}", FORGED) == (
            404,
            {"message": "Not found"},
        )
        assert http("POST", f"{base}/{job_id}", FORGED) == (404, {"message": "Not found"})
        assert http("POST", f"{base}/{job_id}?attempt=1&exp=1&token=%C3%A9", FORGED)[0] == 404
        assert http("POST", callback_url(stack, "f" * 32), FORGED) == (404, {"message": "Not found"})
        # The right token with a tampered body while SIS is still working: the body is ignored.
        deadline = time.monotonic() + TIMEOUT_S
        jobs = stack.wait_for_jobs([ref], timeout_s=0.2)
        while (
            ref.key not in jobs or jobs[ref.key].state is not JobState.SUBMITTED
        ) and time.monotonic() < deadline:
            jobs = stack.wait_for_jobs([ref], timeout_s=0.2)
        status, answer = http("POST", callback_url(stack, job_id), FORGED)
        assert (status, answer) == (200, {"result": "PENDING"})
        assert stack.list_keys("transcripts/forged/") == []
        # Oversized bodies are refused before anything else happens.
        big = b"{" + b" " * (9 * 1024 * 1024) + b"}"
        assert http("POST", callback_url(stack, job_id), big)[0] == 413
    finally:
        stack.sis.set_faults(FaultPlan())
    job = stack.wait_for_jobs([ref], timeout_s=TIMEOUT_S)[ref.key]
    assert job.state is JobState.DONE
    written = stack.read_output("transcripts/forged/target.wav.json")
    assert b"FORGED" not in written and FIXED_TEXT.encode() in written
    # A forged body after the job is done changes nothing either.
    assert http("POST", callback_url(stack, job_id), FORGED)[1] == {"result": "ALREADY_FINAL"}
    assert stack.read_output("transcripts/forged/target.wav.json") == written


def test_a_throttled_submission_is_retried_until_it_goes_through(stack):
    stack.sis.set_faults(FaultPlan(submit_error_rate=1.0, submit_error_status=429))
    try:
        ref = stack.upload(tone_wav(1), "incoming/busy/retry.wav")
        # Wait (bounded) for the first refused attempt to be recorded.
        deadline = time.monotonic() + TIMEOUT_S
        jobs = stack.wait_for_jobs([ref], timeout_s=0.2)
        while time.monotonic() < deadline and (
            ref.key not in jobs
            or not jobs[ref.key].attempts
            or jobs[ref.key].attempts[0].state is AttemptState.IN_FLIGHT
        ):
            jobs = stack.wait_for_jobs([ref], timeout_s=0.2)
        refused = jobs[ref.key]
        assert refused.attempts[0].state is AttemptState.REFUSED, refused
        assert refused.error is not None and refused.error.code == "SIS.0312", refused.error
    finally:
        stack.sis.set_faults(FaultPlan())
    job = stack.wait_for_jobs([ref], timeout_s=TIMEOUT_S)[ref.key]
    assert job.state is JobState.DONE, job
    assert job.attempts[0].state is AttemptState.REFUSED and job.attempts[-1].state is AttemptState.ACCEPTED
    assert stack.list_keys("transcripts/busy/") != []


def test_one_unreadable_message_does_not_sink_the_batch(stack):
    """The real submit handler, given the batch shape Lambda sends: only the bad record fails."""
    from bucketscribe.entrypoints import submit
    from bucketscribe.local.lambda_bridge import LocalLambdaContext

    good = stack.upload(tone_wav(1), "incoming/partial/good.wav")
    # The bucket's own notification for it is in the queue too; drain so only our batch submits it.
    assert stack.wait_queue_idle(timeout_s=TIMEOUT_S)

    def record(message_id: str, body: str) -> dict[str, Any]:
        return {
            "messageId": message_id,
            "receiptHandle": message_id,
            "body": body,
            "attributes": {},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:bucketscribe-uploads",
            "awsRegion": "us-east-1",
        }

    event = {
        "Records": [
            record("not-json", "this is not a notification"),
            record("good", notification_body(good)),
            record("no-records", json.dumps({"Hello": "world"})),
            record("test-event", json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})),
        ]
    }
    response = submit.handler(event, LocalLambdaContext("bucketscribe-submit", timeout_s=300))
    failed = sorted(item["itemIdentifier"] for item in response["batchItemFailures"])
    assert failed == ["no-records", "not-json"]
    job = stack.job(good.job_id())
    assert job is not None and job.state in (JobState.SUBMITTED, JobState.DONE)
