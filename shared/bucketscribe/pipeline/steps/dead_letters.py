"""Use case: notifications that failed every delivery become answers, not silence.

A message reaches the dead-letter queue only when the submit function could not record anything
for it, delivery after delivery (the job store was down, a crash before the job existed, an
upload it could not read). Each one is tried once more; an upload that still cannot be accepted
gets a FAILED job with the reason and ``<key>.error.json`` (where the bucket lets us write it),
and the message is removed.

Each message is settled on its own: one that raises is logged and counted, left for the next run,
and set aside after ``MAX_RECEIVES`` tries, so no message can stop the reconciler. A message that
is not a notification at all (not JSON, an impossible record) is set aside at once: logged with
its id and the start of its body, then removed — retrying it could never help.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from bucketscribe.domain.job import Job, JobError
from bucketscribe.domain.notification import EventShapeError
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.pipeline.steps.attempt import NEVER_SUBMITTED
from bucketscribe.pipeline.steps.failures import error_report_key, write_error_report
from bucketscribe.pipeline.steps.intake import UploadOutcome, UploadResult
from bucketscribe.pipeline.steps.job_writes import describe_error
from bucketscribe.pipeline.steps.submission import take_uploads
from bucketscribe.ports.dead_letters import DeadLetter
from bucketscribe.ports.storage import ObjectInfo

logger = Logger(child=True)

MAX_LETTERS_PER_RUN = 100
# A message whose settling raised this many times (a lasting fault of ours, not the message's) is
# set aside rather than tried for the queue's whole retention.
MAX_RECEIVES = 5
BODY_LOGGED = 300


class DrainReport(BaseModel):
    settled: int = 0  # tried again and answered: submitted, or a FAILED job saying why
    set_aside: int = 0  # unreadable, or failing every time: logged and removed
    failed: int = 0  # raised this run; left in the queue for the next


def drain_dead_letters(
    ports: PipelinePorts, *, out_of_time: Callable[[], bool] = lambda: False
) -> DrainReport:
    """Settle the dead-letter queue's messages, each on its own."""
    assert ports.dead_letters is not None
    report = DrainReport()
    seen: set[str] = set()
    while len(seen) < MAX_LETTERS_PER_RUN and not out_of_time():
        # Letters left in place this run (they raised) come back from a store that lists rather
        # than hides what it handed out: ask for enough to get past them.
        wanted = min(10 + report.failed, MAX_LETTERS_PER_RUN)
        letters = [new for new in ports.dead_letters.receive(wanted) if new.message_id not in seen]
        if not letters:
            break
        for letter in letters:
            seen.add(letter.message_id)
            _settle_one(letter, ports, report)
    return report


def _settle_one(letter: DeadLetter, ports: PipelinePorts, report: DrainReport) -> None:
    assert ports.dead_letters is not None
    try:
        readable = _settle(letter, ports)
    except Exception as exc:
        report.failed += 1
        logger.exception(
            "Could not settle a dead notification; it stays for the next run",
            extra={"message_id": letter.message_id, "receives": letter.receive_count},
        )
        if letter.receive_count is None or letter.receive_count < MAX_RECEIVES:
            return
        _log_set_aside(letter, f"settling failed {letter.receive_count} times; last: {describe_error(exc)}")
        readable = False
    ports.dead_letters.delete(letter)
    if readable:
        report.settled += 1
    else:
        report.set_aside += 1


def _settle(letter: DeadLetter, ports: PipelinePorts) -> bool:
    """Try the notification's uploads once more; ``False`` when it is not a notification at all."""
    assert ports.dead_letters is not None
    try:
        notification = ports.dead_letters.read(letter)
    except EventShapeError as exc:
        _log_set_aside(letter, str(exc))
        return False
    for problem in notification.problems:
        logger.error(
            "Unreadable record in a dead notification set aside",
            extra={"message_id": letter.message_id, "reason": problem},
        )
    for ref, result in zip(notification.refs, take_uploads(notification.refs, ports), strict=True):
        if result.outcome is UploadOutcome.RETRY:
            _fail_upload(ref, result, letter, ports)
    return True


def _log_set_aside(letter: DeadLetter, why: str) -> None:
    logger.error(
        "Dead notification set aside",
        extra={
            "message_id": letter.message_id,
            "reason": why,
            "body_start": letter.body[:BODY_LOGGED],
            "body_bytes": len(letter.body.encode("utf-8", errors="replace")),
        },
    )


def _fail_upload(ref: ObjectRef, result: UploadResult, letter: DeadLetter, ports: PipelinePorts) -> None:
    """Give the upload a FAILED job saying why, unless it has a job already (then that job is
    carried on by the reconciler, or has finished). An upload we are not allowed to read (revoked
    permissions, an object encrypted with a key only its uploader holds) fails with that reason."""
    try:
        info: ObjectInfo | None = ports.storage.head(ref.bucket, ref.key)
        unreadable = None
    except Exception as exc:
        info, unreadable = None, describe_error(exc)
    if info is None and unreadable is None:
        logger.warning("A dead notification names an object that no longer exists", extra={"key": ref.key})
        return
    if info is not None:
        ref = ref.model_copy(update={"size": info.size, "etag": info.etag, "version_id": info.version_id})
    profile = ports.profiles.match(ports.layout.relative(ref.key))
    now = ports.clock()
    job = Job.for_upload(
        ref,
        profile=profile.name,
        provider=profile.provider,
        model=ports.provider(profile.provider).model_name(profile),
        now=now,
    )
    why = f"the upload cannot be read ({unreadable})" if unreadable else f"last: {result.reason}"
    error = JobError(
        code=NEVER_SUBMITTED,
        message=f"the upload's notification failed every delivery (message {letter.message_id}; "
        f"{why}); re-drive it with `bucketscribe redrive {job.id}`",
        retryable=True,
    )
    from bucketscribe.pipeline.steps.notify import announced, deliver_now  # only where a job ends

    failed = announced(job.fail(now, error), ports, error_report=error_report_key(job, ports))
    if not ports.jobs.create(failed):
        return
    logger.warning(
        "Job failed", extra={"job_id": job.id, "key": ref.key, "code": error.code, "reason": error.message}
    )
    try:
        write_error_report(failed, ports)
    except Exception:
        # The bucket refuses us (the same cause, often): the job record and this line say why.
        logger.exception("Could not write the error report", extra={"job_id": job.id, "key": ref.key})
    deliver_now(failed, ports)
