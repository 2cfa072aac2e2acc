"""The pipeline's key promises, end to end, on both clouds' shapes of the local stack.

AWS: upload to the moto bucket → S3 notification → SQS → the Lambda submit handler → the SIS
emulator → a real HTTP callback as an API Gateway (REST) event → the Lambda callback handler.

Huawei Cloud: storage through esdk-obs-python; the bucket's notification → FunctionGraph's OBS
trigger event, invoked asynchronously with FunctionGraph's retries (no queue) → the FunctionGraph
submit handler; callbacks as API Gateway trigger events with base64 bodies → the FunctionGraph
callback handler; a timer → the FunctionGraph reconcile handler.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import srt
import webvtt
from bucketscribe_local.faults import FaultPlan
from bucketscribe_local.stack import LocalStack

from bucketscribe.domain.job import JobState
from bucketscribe.domain.transcript import Transcript
from tests.audio import tone_wav
from tests.e2e.stack_calls import (
    FIXED_TEXT,
    TIMEOUT_S,
    callback_url,
    deliver_again,
    error_report,
    finished,
    http,
    transcribe,
    upload_many,
    uploads_handled,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_the_functions_run_as_the_cloud_runs_them(both_clouds: LocalStack) -> None:
    from bucketscribe.wiring import environment_ports

    ports = environment_ports()
    storage = getattr(ports.storage, "inner", ports.storage)  # under the stack's storage faults
    queues = both_clouds.client("sqs").list_queues().get("QueueUrls", [])
    if both_clouds.options.cloud == "huawei":
        from bucketscribe.clouds.huawei.failed_invocations import FailedInvocations
        from bucketscribe.clouds.huawei.storage import ObsStorage

        assert isinstance(storage, ObsStorage) and isinstance(ports.dead_letters, FailedInvocations)
        assert queues == []  # no queue anywhere: the OBS trigger invokes submit directly
    else:
        from bucketscribe.clouds.aws.dead_letters import SqsDeadLetters
        from bucketscribe.clouds.aws.storage import S3Storage

        assert isinstance(storage, S3Storage) and isinstance(ports.dead_letters, SqsDeadLetters)
        assert len(queues) == 2


def test_an_upload_with_an_awkward_key_becomes_transcripts_beside_it(both_clouds: LocalStack) -> None:
    key = "incoming/a b+c/ünï côde.wav"
    _, job = transcribe(both_clouds, key, tone_wav(1))
    assert job.state is JobState.DONE, job.error
    base = "transcripts/a b+c/ünï côde.wav"
    assert sorted(job.outputs) == sorted(f"{base}.{s}" for s in ("sis.json", "json", "txt", "srt", "vtt"))
    transcript = Transcript.model_validate_json(both_clouds.read_output(f"{base}.json"))
    assert transcript.source is not None and transcript.source.key == key
    assert transcript.text == FIXED_TEXT and transcript.provider == "sis"
    assert FIXED_TEXT in both_clouds.read_output(f"{base}.txt").decode()
    cues = list(srt.parse(both_clouds.read_output(f"{base}.srt").decode()))
    assert " ".join(c.content.split("] ")[-1] for c in cues).replace("\n", " ") == FIXED_TEXT
    vtt = webvtt.from_buffer(io.StringIO(both_clouds.read_output(f"{base}.vtt").decode()))
    assert len(vtt.captions) == len(cues)


def test_the_same_notification_three_times_makes_one_sis_job(both_clouds: LocalStack) -> None:
    before = both_clouds.sis.backend.counters().submissions_received
    ref = both_clouds.upload(tone_wav(1.5), "incoming/dup/thrice.wav")
    for _ in range(2):  # the upload's own notification plus two re-deliveries of it
        deliver_again(both_clouds, ref)
    jobs = both_clouds.wait_for_jobs([ref], timeout_s=TIMEOUT_S)
    assert jobs[ref.key].state is JobState.DONE
    assert uploads_handled(both_clouds)
    assert both_clouds.sis.backend.counters().submissions_received - before == 1


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("empty.wav", b"", "the file is empty (0 bytes)"),
        ("notes.wav", b"Meeting notes: call the customer back on Monday.\n", "look like text"),
    ],
)
def test_bad_uploads_get_an_error_file_and_a_failed_job_with_the_reason(
    both_clouds: LocalStack, name: str, body: bytes, reason: str
) -> None:
    key = f"incoming/bad/{name}"
    _, job = transcribe(both_clouds, key, body)
    assert job.state is JobState.FAILED and reason in job.error.message
    report = error_report(both_clouds, f"transcripts/bad/{name}.error.json")
    assert report["source"]["key"] == key and reason in report["error"]["message"]
    status, view = http(
        "GET",
        f"{both_clouds.callback_url}/jobs/{job.id}",
        headers={"Authorization": f"Bearer {both_clouds.status_token}"},
    )
    assert status == 200 and view["state"] == "FAILED" and reason in view["error"]["message"]
    assert view["key"] == key


FORGED = json.dumps(
    {
        "job_id": "forged",
        "status": "FINISHED",
        "audio_duration": 1000,
        "segments": [{"start_time": 0, "end_time": 900, "result": {"text": "FORGED TEXT"}}],
    }
).encode()


def test_forged_callbacks_are_refused_or_ignored(both_clouds: LocalStack) -> None:
    stack = both_clouds
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
        wait_until(
            lambda: (job := stack.job(ref.job_id())) is not None and job.state is JobState.SUBMITTED,
            timeout_s=TIMEOUT_S,
            what="the job submitted to SIS",
        )
        status, answer = http("POST", callback_url(stack, job_id), FORGED)
        assert (status, answer) == (200, {"result": "PENDING"})
        assert stack.list_keys("transcripts/forged/") == []
        # A body of any size (SIS posts its whole result: ~5 MB for 5 h of audio) is not read at
        # all when the attempt's task is recorded: the URL says which job, SIS is asked.
        big = b"{" + b" " * (9 * 1024 * 1024) + b"}"
        assert http("POST", callback_url(stack, job_id), big) == (200, {"result": "PENDING"})
    finally:
        stack.sis.set_faults(FaultPlan())
    job = stack.wait_for_jobs([ref], timeout_s=TIMEOUT_S)[ref.key]
    assert job.state is JobState.DONE
    written = stack.read_output("transcripts/forged/target.wav.json")
    assert b"FORGED" not in written and FIXED_TEXT.encode() in written
    # A forged body after the job is done changes nothing either.
    assert http("POST", callback_url(stack, job_id), FORGED)[1] == {"result": "ALREADY_FINAL"}
    assert stack.read_output("transcripts/forged/target.wav.json") == written


def test_when_every_push_and_callback_is_lost_the_reconciler_finishes_the_jobs(
    both_clouds: LocalStack,
) -> None:
    stack = both_clouds
    pushes_before = stack.dashscope.backend.counters.pushes_sent
    sis_callbacks_before = stack.sis.backend.counters().callbacks_sent
    stack.set_faults(FaultPlan(drop_callback_rate=1.0))
    try:
        refs = upload_many(
            stack,
            [f"incoming/ds/lost/{i}.wav" for i in range(4)] + ["incoming/sis-lost/call.wav"],
            tone_wav(0.3),
        )
        jobs = finished(stack, refs)
    finally:
        stack.set_faults(FaultPlan())
    assert {job.state for job in jobs.values()} == {JobState.DONE}
    assert stack.dashscope.backend.counters.pushes_sent == pushes_before
    assert stack.dashscope.backend.counters.pushes_dropped >= 1
    assert stack.sis.backend.counters().callbacks_sent == sis_callbacks_before
    assert stack.read_output("transcripts/sis-lost/call.wav.txt")


@pytest.mark.parametrize("both_clouds", ["huawei"], indirect=True)
def test_an_event_submit_fails_every_time_goes_to_the_failure_destination_and_is_settled(
    both_clouds: LocalStack,
) -> None:
    """FunctionGraph retries a failed asynchronous invocation, then writes the event to OBS; the
    reconciler's timer settles that record as it settles SQS dead letters (here: logged, removed)."""
    huawei, log_file = both_clouds.huawei, both_clouds.options.log_file
    assert huawei is not None and log_file is not None
    failures = huawei.uploads.failures
    request_id = huawei.uploads.invoke({"not": "an OBS event"})
    assert huawei.wait_idle(timeout_s=TIMEOUT_S)  # tried 1 + 3 times, then the record was written
    assert huawei.uploads.failures == failures + 1
    wait_until(
        lambda: (
            both_clouds.list_keys("failed-invocations/submit/") == [] and settled_in_log(log_file, request_id)
        ),
        timeout_s=TIMEOUT_S,
        what="the reconciler to settle the failure record",
    )
    assert both_clouds.list_keys("failed-invocations/submit/") == []
    assert settled_in_log(log_file, request_id), "the reconciler never settled the failure record"


def settled_in_log(log_file: Path, request_id: str) -> bool:
    for line in log_file.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line) if line.startswith("{") else {}
        if entry.get("message_id") == request_id and "set aside" in str(entry.get("message")):
            return '"not": "an OBS event"' in str(entry.get("body_start"))
    return False
