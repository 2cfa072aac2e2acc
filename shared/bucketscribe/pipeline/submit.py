"""Use case: uploads announced by a bucket trigger → jobs submitted to their providers.

Skips what is not ours, refuses bad input with a reason, claims each upload's one job, checks and
routes its media, and submits it (``steps/submission.py``, ``steps/attempt.py``), or streams it
for a real-time profile. One result per upload, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.context import PipelinePorts, TimeLeft
from bucketscribe.pipeline.steps.attempt import NEVER_SUBMITTED
from bucketscribe.pipeline.steps.intake import UploadOutcome, UploadResult
from bucketscribe.pipeline.steps.submission import take_uploads


def submit_uploads(
    refs: Iterable[ObjectRef],
    ports: PipelinePorts,
    *,
    out_of_time: Callable[[], bool] = lambda: False,
    time_left: TimeLeft = lambda: None,
) -> list[UploadResult]:
    """Accept and submit ``refs``; one result per ref, in order. When ``out_of_time`` says so, the
    rest are handed back (RETRY); ``time_left`` bounds what a real-time profile may start streaming."""
    return take_uploads(refs, ports, out_of_time=out_of_time, time_left=time_left)


__all__ = ["NEVER_SUBMITTED", "UploadOutcome", "UploadResult", "submit_uploads"]
