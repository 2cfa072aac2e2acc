"""Use case: notifications that failed every delivery become answers, not silence.

A message reaches the dead-letter queue only when the submit function could not record anything
for it, delivery after delivery (the job store was down, a crash before the job existed). Each
one is tried once more; an upload that still cannot be accepted gets a FAILED job with the
reason and ``<key>.error.json``, and the message is removed. An unreadable message is logged
with its id and the start of its body, then removed.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools import Logger

from bucketscribe.events import EventShapeError, object_refs_from_message_body
from bucketscribe.job import Job, JobError
from bucketscribe.model import ObjectRef
from bucketscribe.pipeline.failures import write_error_report
from bucketscribe.pipeline.intake import UploadOutcome, UploadResult
from bucketscribe.pipeline.ports import DeadLetter, PipelinePorts
from bucketscribe.pipeline.submit import NEVER_SUBMITTED, submit_uploads

logger = Logger(child=True)

MAX_LETTERS_PER_RUN = 100


def drain_dead_letters(ports: PipelinePorts, *, out_of_time: Callable[[], bool] = lambda: False) -> int:
    """Settle the dead-letter queue's messages; returns how many were settled."""
    assert ports.dead_letters is not None
    settled = 0
    while settled < MAX_LETTERS_PER_RUN and not out_of_time():
        letters = ports.dead_letters.receive(10)
        if not letters:
            break
        for letter in letters:
            _settle(letter, ports)
            ports.dead_letters.delete(letter)
            settled += 1
    return settled


def _settle(letter: DeadLetter, ports: PipelinePorts) -> None:
    try:
        notification = object_refs_from_message_body(letter.body)
    except EventShapeError as exc:
        logger.error(
            "Unreadable notification removed from the dead-letter queue",
            extra={"message_id": letter.message_id, "reason": str(exc), "body_start": letter.body[:300]},
        )
        return
    for problem in notification.problems:
        logger.error(
            "Unreadable record in a dead notification",
            extra={"message_id": letter.message_id, "reason": problem},
        )
    for ref, result in zip(notification.refs, submit_uploads(notification.refs, ports), strict=True):
        if result.outcome is UploadOutcome.RETRY:
            _fail_upload(ref, result, letter, ports)


def _fail_upload(ref: ObjectRef, result: UploadResult, letter: DeadLetter, ports: PipelinePorts) -> None:
    """Give the upload a FAILED job saying why, unless it has a job already (then that job is
    carried on by the reconciler, or has finished)."""
    info = ports.storage.head(ref.bucket, ref.key)
    if info is None:
        logger.warning("A dead notification names an object that no longer exists", extra={"key": ref.key})
        return
    ref = ref.model_copy(update={"size": info.size, "etag": info.etag, "version_id": info.version_id})
    profile = ports.profiles.match(ports.layout.relative(ref.key))
    now = ports.clock()
    job = Job.for_upload(
        ref, profile=profile.name, provider=profile.provider, model=profile.model_name, now=now
    )
    error = JobError(
        code=NEVER_SUBMITTED,
        message=f"the upload's notification failed every delivery (message {letter.message_id}; "
        f"last: {result.reason}); re-drive it with `bucketscribe redrive {job.id}`",
        retryable=True,
    )
    failed = job.fail(now, error)
    if ports.jobs.create(failed):
        write_error_report(failed, ports)
        logger.warning(
            "Job failed",
            extra={"job_id": job.id, "key": ref.key, "code": error.code, "reason": error.message},
        )
