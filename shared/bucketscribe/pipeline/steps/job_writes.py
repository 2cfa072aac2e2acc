"""Applying a job transition to the store: optimistic concurrency, decided afresh on conflict."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from aws_lambda_powertools import Logger

from bucketscribe.domain.job import InvalidTransition, Job
from bucketscribe.domain.redaction import redact
from bucketscribe.ports.job_store import JobStore

logger = Logger(child=True)

T = TypeVar("T")
MAX_CONFLICTS = 8
# After the provider accepted a submission, our record of it must not be lost to a short
# job-store outage: the write is retried for about this long before the job is left to the
# reconciler (its lease runs out and the attempt is resolved from evidence).
STORE_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 8.0)


def describe_error(exc: BaseException) -> str:
    """An unexpected error in one line, for a job's reason and the logs."""
    return redact(f"{type(exc).__name__}: {exc}")


def new_owner() -> str:
    """A name for one worker's claim or lease on a job (one per use-case run)."""
    return uuid.uuid4().hex[:16]


class ConcurrentChanges(RuntimeError):
    """The job kept changing under us; the caller's work is retried later."""


def apply(jobs: JobStore, job: Job, change: Callable[[Job], Job]) -> Job | None:
    """Write ``change(job)``; when someone changed the job meanwhile, re-read it and let the change
    decide again from the newer copy. ``None`` when the change no longer applies (the newer copy's
    state does not allow it, or the job is gone): the caller then leaves the job to its new owner.

    A draft (a new upload's job, not stored yet) is created with its change in one conditional
    write; when the job exists already (another delivery of the upload's event got there first)
    the change is not decided again on that copy, which is another worker's: ``None``.
    """
    if job.draft:
        try:
            changed = change(job).model_copy(update={"draft": False})
        except InvalidTransition as exc:
            logger.debug("Not applicable to the draft", extra={"job_id": job.id, "reason": str(exc)})
            return None
        return changed if jobs.create(changed) else None
    current: Job | None = job
    for _ in range(MAX_CONFLICTS):
        if current is None:
            return None
        try:
            changed = change(current)
        except InvalidTransition as exc:
            logger.debug("Transition no longer applies", extra={"job_id": job.id, "reason": str(exc)})
            return None
        if jobs.save(changed):
            return changed
        current = jobs.get(job.id)
    raise ConcurrentChanges(f"job {job.id} changed {MAX_CONFLICTS} times while we tried to update it")


def with_store_retries(
    write: Callable[[], T],
    *,
    what: str,
    keep_trying: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run a job-store write, retrying transient failures for a while (see STORE_RETRY_DELAYS_S),
    and after that for as long as ``keep_trying`` says (the run's time left: an outage of several
    minutes must not cost what the write records)."""
    delays = iter(STORE_RETRY_DELAYS_S)
    while True:
        try:
            return write()
        except (ConcurrentChanges, InvalidTransition):
            raise
        except Exception as exc:
            delay = next(delays, None)
            if delay is None and not keep_trying():
                raise
            logger.warning(
                "Job store write failed; retrying",
                extra={"what": what, "error": describe_error(exc)},
            )
            sleep(delay if delay is not None else STORE_RETRY_DELAYS_S[-1])
