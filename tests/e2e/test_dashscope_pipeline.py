"""DashScope Paraformer end to end on the local stack, and the reconciler that never loses a job.

Uploads under ``incoming/ds/`` use the DashScope profile: the real submit handler batches
them into tasks through the real ``dashscope`` SDK, the emulator pushes an EventBridge-style
``AsyncTaskFinish`` event to the real callback handler, and the reconcile schedule polls
whatever a push never finished.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from bucketscribe_local.faults import FaultPlan
from bucketscribe_local.stack import LocalStack

from bucketscribe.domain.job import AttemptState, Job, JobState
from bucketscribe.domain.transcript import Transcript
from tests.audio import tone_wav
from tests.e2e.stack_calls import TIMEOUT_S, error_report, finished, upload_many
from tests.fakes import known
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def counters(stack: LocalStack) -> Any:
    return stack.dashscope.backend.counters


UPLOADS = 101  # one more than a task takes: the backlog must be cut in two


def test_a_backlog_of_101_uploads_goes_in_2_tasks_of_at_most_100_and_all_get_transcripts(
    stack: LocalStack,
) -> None:
    before = counters(stack).submit_calls
    batches_before = stack.dispatcher.batches
    # A backlog of notifications taken as one event-source batch (a batch size that takes it all
    # and a window), as Lambda's event source hands a backlog over.
    stack.set_batching(UPLOADS, 20.0)  # returns as soon as the batch is full
    try:
        with stack.dispatch_paused():
            keys = [f"incoming/ds/bulk/{i:03d}.wav" for i in range(UPLOADS)]
            refs = upload_many(stack, keys, tone_wav(0.2))
            wait_until(
                lambda: stack.queue_depth() >= UPLOADS,
                timeout_s=TIMEOUT_S,
                what=f"{UPLOADS} queued notifications",
            )
        # ~20 s on an idle 2-core machine (~500 outputs through moto); room for a busy one.
        jobs = finished(stack, refs, timeout_s=180)
    finally:
        stack.set_batching(10, 0.0)
    assert {job.state for job in jobs.values()} == {JobState.DONE}
    tasks: dict[str, int] = {}
    for job in jobs.values():
        task = known(job.provider_task_id)
        tasks[task] = tasks.get(task, 0) + 1
    assert counters(stack).submit_calls - before == len(tasks)  # one call per task, none wasted
    assert max(tasks.values()) <= 100
    # Two tasks when the backlog came in one batch; on a busy machine the poller may hand it over
    # in more batches (as Lambda's may), each cut into tasks of at most 100.
    batches = stack.dispatcher.batches - batches_before
    assert len(tasks) <= 2 + (batches - 1), (sorted(tasks.values()), batches)
    transcripts = [k for k in stack.list_keys("transcripts/ds/bulk/") if k.endswith(".wav.json")]
    assert len(transcripts) == UPLOADS
    sample = Transcript.model_validate_json(stack.read_output(transcripts[0]))
    # The model is what really ran: the emulator names its engine (the instant one here).
    assert sample.provider == "dashscope" and sample.model.startswith("fixed-text") and sample.text


def test_one_bad_file_fails_alone_with_dashscopes_code_and_message(stack: LocalStack) -> None:
    # DashScope starts on the task only after this delay: time to make one file disappear.
    stack.set_faults(FaultPlan(processing_delay_s=6.0))
    # Every object is announced here, outputs too (and skipped): the earlier test's go first, so
    # that the batch of three holds these three uploads and nothing else.
    wait_until(lambda: stack.queue_depth() == 0, timeout_s=TIMEOUT_S, what="the queue drained")
    stack.set_batching(3, 20.0)  # the three uploads in one batch, so in one task
    try:
        with stack.dispatch_paused():
            refs = upload_many(
                stack, [f"incoming/ds/mixed/{n}.wav" for n in ("a", "gone", "b")], tone_wav(0.3)
            )
            wait_until(lambda: stack.queue_depth() >= 3, timeout_s=TIMEOUT_S, what="3 queued notifications")

        def jobs_now() -> dict[str, Job | None]:
            return {ref.key: stack.job(ref.job_id()) for ref in refs}

        wait_until(
            lambda: all(job and job.state is JobState.SUBMITTED for job in jobs_now().values()),
            timeout_s=TIMEOUT_S,
            what="the three uploads submitted",
        )
        jobs = jobs_now()
        assert len({job.provider_task_id for job in jobs.values() if job}) == 1
        # The file disappears before DashScope downloads it: its URL now answers 404.
        stack.client("s3").delete_object(Bucket=stack.bucket, Key="incoming/ds/mixed/gone.wav")
    finally:
        stack.set_faults(FaultPlan())
        stack.set_batching(10, 0.0)
    done = finished(stack, refs)
    gone = done["incoming/ds/mixed/gone.wav"]
    assert gone.state is JobState.FAILED and gone.error.code == "InvalidFile.DownloadFailed"
    assert "cannot be downloaded" in gone.error.message
    report = error_report(stack, "transcripts/ds/mixed/gone.wav.error.json")
    assert report["error"]["code"] == "InvalidFile.DownloadFailed"
    assert done["incoming/ds/mixed/a.wav"].state is JobState.DONE
    assert done["incoming/ds/mixed/b.wav"].state is JobState.DONE


def test_a_push_delivered_twice_writes_the_outputs_once(stack: LocalStack) -> None:
    s3 = stack.client("s3")
    s3.put_bucket_versioning(Bucket=stack.bucket, VersioningConfiguration={"Status": "Enabled"})
    sent_before = counters(stack).pushes_sent
    stack.set_faults(FaultPlan(duplicate_callback_rate=1.0))
    try:
        refs = upload_many(stack, [f"incoming/ds/twice/{i}.wav" for i in range(3)], tone_wav(0.3))
        tasks = {job.provider_task_id for job in finished(stack, refs).values()}
        # Every task's push and its duplicate answered, before the versions are counted.
        wait_until(
            lambda: counters(stack).pushes_sent - sent_before >= 2 * len(tasks),
            timeout_s=TIMEOUT_S,
            what="every push and its duplicate answered",
        )
    finally:
        stack.set_faults(FaultPlan())
        s3.put_bucket_versioning(Bucket=stack.bucket, VersioningConfiguration={"Status": "Suspended"})
    assert counters(stack).pushes_duplicated >= 1
    versions = s3.list_object_versions(Bucket=stack.bucket, Prefix="transcripts/ds/twice/")["Versions"]
    per_key: dict[str, int] = {}
    for version in versions:
        per_key[version["Key"]] = per_key.get(version["Key"], 0) + 1
    assert len(per_key) == 3 * 5  # json, txt, srt, vtt + the raw result, for each file
    assert set(per_key.values()) == {1}, per_key


def post_push(stack: LocalStack, body: dict[str, Any], headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        f"{stack.callback_url}/callbacks/dashscope",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_forged_pushes_are_rejected_and_nothing_is_fetched(stack: LocalStack) -> None:
    refs = upload_many(stack, ["incoming/ds/forged/x.wav"], tone_wav(0.3))
    job = finished(stack, refs)[refs[0].key]
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "acs.dashscope",
        "type": "dashscope:System:AsyncTaskFinish",
        "time": datetime.now(UTC).isoformat(),
        "data": {"task_id": job.provider_task_id, "task_status": "SUCCEEDED"},
    }
    now_ms = str(int(time.time() * 1000))
    stale_ms = str(int((time.time() - 120) * 1000))
    queries = counters(stack).query_calls
    token = stack.push_token
    assert post_push(stack, event, {"x-eventbridge-signature-timestamp": now_ms}) == 401
    assert (
        post_push(
            stack, event, {"x-bucketscribe-push-token": "wrong", "x-eventbridge-signature-timestamp": now_ms}
        )
        == 401
    )
    assert (
        post_push(
            stack, event, {"x-bucketscribe-push-token": token, "x-eventbridge-signature-timestamp": stale_ms}
        )
        == 401
    )
    # An absurd timestamp is a refusal, never a server error, with or without the credential.
    absurd = "9" * 40
    assert post_push(stack, event, {"x-eventbridge-signature-timestamp": absurd}) == 401
    assert (
        post_push(
            stack, event, {"x-bucketscribe-push-token": token, "x-eventbridge-signature-timestamp": absurd}
        )
        == 401
    )
    stale_event = {**event, "time": "2026-01-01T00:00:00Z"}
    assert post_push(stack, stale_event, {"x-bucketscribe-push-token": token}) == 401
    assert (
        post_push(
            stack,
            {**event, "source": "acs.evil"},
            {"x-bucketscribe-push-token": token, "x-eventbridge-signature-timestamp": now_ms},
        )
        == 401
    )
    assert counters(stack).query_calls == queries
    # The genuine credential and a fresh timestamp are accepted (and, the job being done, change nothing).
    assert (
        post_push(
            stack, event, {"x-bucketscribe-push-token": token, "x-eventbridge-signature-timestamp": now_ms}
        )
        == 200
    )


def test_throttled_submissions_wait_for_capacity_and_nothing_is_lost(stack: LocalStack) -> None:
    """DashScope's throttling is its quota: each upload waits in the queue (reason kept, no
    attempt recorded for a call that created nothing) and goes through once it lifts."""
    stack.set_faults(FaultPlan(submit_error_rate=1.0, submit_error_status=429))
    try:
        refs = upload_many(stack, [f"incoming/ds/throttled/{i}.wav" for i in range(3)], tone_wav(0.3))

        def jobs_now() -> list[Job | None]:
            return [stack.job(ref.job_id()) for ref in refs]

        wait_until(
            lambda: all(job and job.capacity_waits >= 1 for job in jobs_now()),
            timeout_s=TIMEOUT_S,
            what="each upload waiting for capacity",
        )
        waiting = [job for job in jobs_now() if job is not None]
        assert all(job.error and job.error.code.startswith("Throttling") for job in waiting), waiting
        assert all(a.state is not AttemptState.REFUSED for job in waiting for a in job.attempts)
    finally:
        stack.set_faults(FaultPlan())
    jobs_done = finished(stack, refs)
    assert {job.state for job in jobs_done.values()} == {JobState.DONE}
    assert all([a.state for a in job.attempts] == [AttemptState.ACCEPTED] for job in jobs_done.values())
