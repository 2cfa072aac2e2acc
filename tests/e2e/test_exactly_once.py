"""Exactly one provider job per upload, and an answer for every upload, under our own failures:
the worker dying right after SIS accepted, and the job store going away mid-submission.

Provider jobs are counted at the emulator, as a bill would count them.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from bucketscribe_local.aws_resources import LocalAwsNames
from bucketscribe_local.pipeline_faults import PipelineFaultPlan
from bucketscribe_local.stack import LocalStack

from bucketscribe.domain.job import AttemptState, JobState
from tests.audio import tone_wav
from tests.e2e.conftest import stack_options
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

TIMEOUT_S = 90
# Two tests wait for the notification their crashed or refused worker left in flight to come back:
# a visibility timeout of 12 s (not the e2e stacks' 30) and a claim lease below it.
VISIBILITY_TIMEOUT_S = 12
CLAIM_LEASE_S = 8


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options = stack_options(tmp_path_factory.mktemp("stack")).model_copy(
        update={
            "names": LocalAwsNames(notification_prefix="", visibility_timeout_s=VISIBILITY_TIMEOUT_S),
            "claim_lease_s": CLAIM_LEASE_S,
        }
    )
    with LocalStack(options) as running:
        yield running


def sis_jobs_for(stack: LocalStack, key: str) -> int:
    """SIS jobs whose media URL names ``key`` (each upload's presigned URL carries its key), as
    the emulator lists them."""
    with urllib.request.urlopen(f"{stack.sis.url}/_emulator/jobs", timeout=30) as response:
        listed = json.loads(response.read())["jobs"]
    return sum(1 for job in listed if key in urllib.parse.unquote(job["file_url"]))


def test_a_worker_that_dies_after_sis_accepted_costs_no_second_job(stack: LocalStack) -> None:
    stack.pipeline_faults.set_plan(PipelineFaultPlan(crash_after_submit_rate=1.0))
    try:
        ref = stack.upload(tone_wav(1), "incoming/crash/after-accept.wav")
        wait_until(lambda: stack.dispatcher.crashes >= 1, timeout_s=TIMEOUT_S, what="the worker to crash")
    finally:
        stack.pipeline_faults.set_plan(PipelineFaultPlan())
    # The job is left mid-submission; the attempt's callback proves which SIS job it made.
    job = stack.wait_for_jobs([ref], timeout_s=TIMEOUT_S)[ref.key]
    assert job.state is JobState.DONE, job
    (attempt,) = job.attempts
    assert attempt.state is AttemptState.ACCEPTED and attempt.bound_by == "callback"
    # The notification comes back after the visibility timeout and is recognised as a duplicate.
    assert stack.wait_queue_idle(timeout_s=TIMEOUT_S)
    assert sis_jobs_for(stack, "crash/after-accept.wav") == 1


def test_a_job_store_outage_during_submission_loses_nothing_and_pays_once(stack: LocalStack) -> None:
    with stack.dispatch_paused():
        ref = stack.upload(tone_wav(1), "incoming/outage/during.wav")
    stack.pipeline_faults.job_store_outage(4.0)
    job = stack.wait_for_jobs([ref], timeout_s=TIMEOUT_S)[ref.key]
    assert job.state is JobState.DONE, job
    assert stack.pipeline_faults.counters.job_store_requests_refused > 0
    assert stack.wait_queue_idle(timeout_s=TIMEOUT_S)
    assert sis_jobs_for(stack, "outage/during.wav") == 1
    assert json.loads(stack.read_output("transcripts/outage/during.wav.json"))["source"]["key"] == ref.key


def test_a_dashscope_task_whose_answer_was_lost_is_found_in_its_listing_not_paid_twice(
    stack: LocalStack,
) -> None:
    from bucketscribe_local.faults import FaultPlan

    before = stack.dashscope.backend.counter_values()["tasks_created"]
    stack.dashscope.set_faults(FaultPlan(lost_response_rate=1.0, lost_response_mode="error"))
    try:
        with stack.dispatch_paused():
            refs = [stack.upload(tone_wav(1), f"incoming/ds/lost-answer/{i}.wav") for i in range(3)]
        wait_until(
            lambda: stack.dashscope.backend.counter_values()["responses_lost"] >= 1,
            timeout_s=TIMEOUT_S,
            what="DashScope to create a task and lose its answer",
        )
    finally:
        stack.dashscope.set_faults(FaultPlan())
    jobs = stack.wait_for_jobs(refs, timeout_s=TIMEOUT_S)
    assert {job.state for job in jobs.values()} == {JobState.DONE}, jobs
    for job in jobs.values():
        (attempt,) = job.attempts  # one attempt: the lost answer was resolved, not re-sent
        assert attempt.bound_by in ("listing", "answer"), attempt
    assert any(job.attempts[0].bound_by == "listing" for job in jobs.values())
    assert stack.wait_queue_idle(timeout_s=TIMEOUT_S)
    created = stack.dashscope.backend.counter_values()["tasks_created"] - before
    assert created == len({job.provider_task_id for job in jobs.values()})


def test_an_upload_replaced_while_at_sis_leaves_the_key_to_the_new_version(stack: LocalStack) -> None:
    from bucketscribe_local.faults import FaultPlan

    key = "incoming/replaced/meeting.wav"
    finished = stack.sis.backend.counter_values()["jobs_finished"]
    with stack.reconcile_paused():
        # The first version's callback is lost: only the reconciler could finish it, and it waits.
        stack.sis.set_faults(FaultPlan(drop_callback_rate=1.0))
        try:
            first = stack.upload(tone_wav(1), key)
            wait_until(
                lambda: stack.sis.backend.counter_values()["jobs_finished"] > finished,
                timeout_s=TIMEOUT_S,
                what="SIS to finish the first version (its callback dropped)",
            )
        finally:
            stack.sis.set_faults(FaultPlan())
        second = stack.upload(tone_wav(2), key)
        assert second.etag != first.etag
        new = stack.wait_for_jobs([second], timeout_s=TIMEOUT_S)[key]
        assert new.state is JobState.DONE, new
        written = json.loads(stack.read_output("transcripts/replaced/meeting.wav.json"))
    # Now the reconciler finds the first version's result.
    old = stack.wait_for_jobs([first], timeout_s=TIMEOUT_S)[key]
    assert old.state is JobState.SUPERSEDED and old.superseded_by == new.id, old
    assert json.loads(stack.read_output("transcripts/replaced/meeting.wav.json")) == written
    assert written["source"]["etag"] == second.etag
    assert "transcripts/replaced/meeting.wav.error.json" not in stack.list_keys("transcripts/replaced/")


def test_dead_letters_that_cannot_be_read_or_are_garbage_never_stop_the_reconciler(stack: LocalStack) -> None:
    from bucketscribe_local.pipeline_faults import StorageErrorRule

    sqs = stack.client("sqs")
    assert stack.resources is not None
    dlq = stack.resources.dead_letter_queue_url
    stack.pipeline_faults.set_plan(
        PipelineFaultPlan(
            # An object stored with a customer-provided key answers 400 to every read without it.
            storage_errors=[
                StorageErrorRule(op=op, key_contains="dlq/sealed-2", status=400) for op in ("head", "get")
            ]
        )
    )
    try:
        with stack.reconcile_paused():
            # An object stored with a customer-provided key: every HEAD we make answers 400, and
            # its notification ended in the dead-letter queue with garbage beside it.
            body = tone_wav(1.5)
            stack.client("s3").put_object(Bucket=stack.bucket, Key="incoming/dlq/sealed-2.wav", Body=body)
            for message in (
                json.dumps(
                    {
                        "Records": [
                            {
                                "eventName": "ObjectCreated:Put",
                                "s3": {
                                    "bucket": {"name": stack.bucket},
                                    "object": {"key": "incoming/dlq/sealed-2.wav"},
                                },
                            }
                        ]
                    }
                ),
                "not a notification at all",
                json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": stack.bucket}),
                json.dumps(
                    {"Records": [{"s3": {"bucket": {"name": "no such bucket!"}, "object": {"key": "x.wav"}}}]}
                ),
            ):
                sqs.send_message(QueueUrl=dlq, MessageBody=message)
        failed_before = stack.reconcile_runs_failed

        def drained() -> bool:
            attributes = sqs.get_queue_attributes(
                QueueUrl=dlq,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            return all(int(value) == 0 for value in attributes.values())

        wait_until(drained, timeout_s=TIMEOUT_S, what="the reconciler to settle every dead letter")
    finally:
        stack.pipeline_faults.set_plan(PipelineFaultPlan())
    (job,) = stack.jobs_for_key("incoming/dlq/sealed-2.wav")
    assert job.state is JobState.FAILED and job.error is not None
    assert "cannot be read" in job.error.message and "HTTP 400" in job.error.message
    assert stack.reconcile_runs_failed == failed_before
    assert stack.pipeline_faults.counters.storage_requests_refused >= 1


def test_sis_sending_each_lost_answers_task_to_the_other_uploads_url_crosses_nothing(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The attack of issue 15: SIS's answers lost, every real callback dropped, each finished job's
    result sent to the *other* upload's callback URL. Before, each upload got the other's words."""
    from bucketscribe_local.digest_engine import digest_text
    from bucketscribe_local.faults import FaultPlan

    from tests.e2e.conftest import stack_options

    log_dir = tmp_path_factory.mktemp("crossed")
    options = stack_options(log_dir).model_copy(
        update={"instant": False, "digest": True, "evidence_wait_s": 4}
    )
    crossing = FaultPlan(
        lost_response_rate=1.0,
        lost_response_mode="error",
        drop_callback_rate=1.0,
        callback_for_unknown_job=1.0,
        processing_delay_s=2.0,
    )
    with LocalStack(options) as stack:
        stack.set_faults(crossing)
        bodies = {
            f"incoming/crossed/{name}.wav": tone_wav(seconds) for name, seconds in (("x", 1.0), ("y", 2.5))
        }
        try:
            with stack.dispatch_paused():
                refs = [stack.upload(body, key) for key, body in bodies.items()]
            log = log_dir / "functions.log"

            def both_crossed_callbacks_refused() -> bool:
                text = log.read_text(encoding="utf-8") if log.exists() else ""
                return text.count("is not this upload's") >= 2

            wait_until(
                both_crossed_callbacks_refused, timeout_s=TIMEOUT_S, what="both crossed callbacks refused"
            )
            for ref in refs:
                job = stack.job(ref.job_id())
                assert job is not None and job.state is JobState.SUBMITTING, job
        finally:
            stack.set_faults(FaultPlan())
        jobs = stack.wait_for_jobs(refs, timeout_s=TIMEOUT_S)
        for key, body in bodies.items():
            job = jobs[key]
            assert job.state is JobState.DONE, job
            written = json.loads(stack.read_output(stack.layout.output_key(key, "json")))
            assert " ".join(segment["text"] for segment in written["segments"]).strip() == digest_text(body)
            assert [attempt.state for attempt in job.attempts] == [
                AttemptState.ABANDONED,
                AttemptState.ACCEPTED,
            ]
            assert sis_jobs_for(stack, key.removeprefix("incoming/")) == 2
