"""What the e2e tests do to a running local stack, whichever cloud it runs the functions as."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from bucketscribe_local.handler_events import notification_record
from bucketscribe_local.stack import LocalStack

from bucketscribe.domain.callback_tokens import CallbackSigner
from bucketscribe.domain.job import Job
from bucketscribe.domain.upload import ObjectRef
from tests.waiting import wait_until

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


def error_report(stack: LocalStack, key: str, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """The error report at ``key``, once written: a job is marked FAILED first and its report is
    written just after, so a test that saw the job FAILED may ask a moment too soon."""
    wait_until(lambda: key in stack.list_keys(key), timeout_s=timeout_s, what=f"the error report {key}")
    report: dict[str, Any] = json.loads(stack.read_output(key))
    return report


def upload_many(stack: LocalStack, keys: list[str], body: bytes) -> list[ObjectRef]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda key: stack.upload(body, key), keys))


def finished(stack: LocalStack, refs: list[ObjectRef], timeout_s: float = TIMEOUT_S) -> dict[str, Job]:
    jobs = stack.wait_for_jobs(refs, timeout_s=timeout_s, poll_s=0.5)
    assert len(jobs) == len(refs), f"only {len(jobs)} of {len(refs)} uploads have a job"
    unfinished = [key for key, job in jobs.items() if not job.state.is_final]
    assert not unfinished, f"not finished: {unfinished[:5]}"
    return jobs


def notification_body(ref: ObjectRef) -> str:
    return json.dumps({"Records": [notification_record(ref)]})


def deliver_again(stack: LocalStack, ref: ObjectRef) -> None:
    """The upload's notification once more (buckets deliver at least once): into the queue on
    AWS, as another asynchronous invocation of the OBS trigger on Huawei Cloud."""
    if stack.huawei is not None:
        from bucketscribe_local.functiongraph_bridge import obs_trigger_event

        stack.huawei.uploads.invoke(obs_trigger_event(notification_record(ref)))
        return
    assert stack.resources is not None
    stack.client("sqs").send_message(QueueUrl=stack.resources.queue_url, MessageBody=notification_body(ref))


def uploads_handled(stack: LocalStack) -> bool:
    """True once every upload notification so far has been handled (no retry pending)."""
    if stack.huawei is not None:
        return stack.huawei.wait_idle(timeout_s=TIMEOUT_S)
    return stack.wait_queue_idle(timeout_s=TIMEOUT_S)


def signer() -> CallbackSigner:
    return CallbackSigner(os.environ["BUCKETSCRIBE_CALLBACK_SECRET"].encode())


def callback_url(stack: LocalStack, job_id: str, attempt: int = 1) -> str:
    """A genuine callback URL of the job's attempt, as the submission handed it to SIS."""
    expires = datetime.now(UTC) + timedelta(hours=1)
    return signer().callback_url(stack.callback_url, "sis", job_id, attempt, expires)
