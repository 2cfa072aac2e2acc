"""The batch pipeline end to end on the local stack (the AWS shape).

Upload to the moto bucket → S3 notification → SQS → the real submit handler → the SIS
emulator (through the real huaweicloudsdksis SDK) → a real HTTP callback → API Gateway
events for the real callback handler → outputs in the bucket. The key cases run on both
clouds' shapes in test_both_clouds.py.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import pytest
from bucketscribe_local.faults import FaultPlan
from bucketscribe_local.stack import LocalStack

from bucketscribe.domain.job import AttemptState, JobState
from bucketscribe.domain.upload import ObjectRef
from tests.audio import tone_wav
from tests.e2e.stack_calls import TIMEOUT_S, http, notification_body, transcribe

pytestmark = pytest.mark.e2e


def test_our_own_outputs_start_no_job(stack: LocalStack) -> None:
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


def test_job_status_needs_the_token_and_reveals_nothing_without_it(stack: LocalStack) -> None:
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


def test_a_job_is_found_by_its_upload_without_its_etag(stack: LocalStack) -> None:
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


def test_a_throttled_submission_waits_for_capacity_then_goes_through(stack: LocalStack) -> None:
    """SIS.0312 (too many jobs) is the quota, not a fault: the upload waits in the queue with the
    reason on its record and no attempt kept (the provider created nothing), then goes through."""
    stack.sis.set_faults(FaultPlan(submit_error_rate=1.0, submit_error_status=429))
    try:
        ref = stack.upload(tone_wav(1), "incoming/busy/retry.wav")
        deadline = time.monotonic() + TIMEOUT_S
        jobs = stack.wait_for_jobs([ref], timeout_s=0.2)
        while time.monotonic() < deadline and (ref.key not in jobs or jobs[ref.key].capacity_waits == 0):
            jobs = stack.wait_for_jobs([ref], timeout_s=0.2)
        waiting = jobs[ref.key]
        assert waiting.capacity_waits >= 1 and waiting.waiting_since is not None, waiting
        assert waiting.error is not None and waiting.error.code == "SIS.0312", waiting.error
        assert all(a.state is not AttemptState.REFUSED for a in waiting.attempts), waiting.attempts
    finally:
        stack.sis.set_faults(FaultPlan())
    job = stack.wait_for_jobs([ref], timeout_s=TIMEOUT_S)[ref.key]
    assert job.state is JobState.DONE, job
    assert [a.state for a in job.attempts] == [AttemptState.ACCEPTED], job.attempts
    assert job.capacity_waits >= 1
    assert stack.list_keys("transcripts/busy/") != []


def test_one_unreadable_message_does_not_sink_the_batch(stack: LocalStack) -> None:
    """The real submit handler, given the batch shape Lambda sends: only the bad record fails."""
    from bucketscribe_local.lambda_bridge import LocalLambdaContext

    from bucketscribe.clouds.aws import submit

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
