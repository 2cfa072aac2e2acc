"""What every cloud's upload entry point shares (a queue's batch, a bucket's direct trigger): the
time margin, the one retryable failure, and how outcomes are logged and counted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bucketscribe.domain.notification import Notification
from bucketscribe.observability import count, logger, record_stream
from bucketscribe.pipeline.submit import UploadOutcome, UploadResult

# Stop accepting with this much time left, to submit what was accepted; the rest comes again.
SUBMIT_MARGIN_MS = 60_000


class SubmitLater(RuntimeError):
    """Nothing durable happened for an upload of this delivery; it must be delivered again."""


def report_unreadable_records(notification: Notification, **where: Any) -> None:
    """Records that name no object are logged and skipped; the others go on."""
    for problem in notification.problems:
        logger.warning("Unreadable record skipped", extra={**where, "reason": problem})
        count("RecordsUnreadable")


def count_outcomes(results: Sequence[UploadResult]) -> None:
    for result in results:
        count(f"Uploads{result.outcome.value.title()}")
        if result.stream is not None:  # real-time mode: the service's delays for this upload
            record_stream(result.stream)


def raise_for_retry(results: Sequence[UploadResult]) -> None:
    """Fail the delivery when an upload got nothing durable (RETRY): every other outcome —
    submitted, deferred to the reconciler, rejected with a reason — is final for the trigger."""
    retry = [result for result in results if result.outcome is UploadOutcome.RETRY]
    if retry:
        raise SubmitLater("; ".join(f"{result.source.key}: {result.reason}" for result in retry))
