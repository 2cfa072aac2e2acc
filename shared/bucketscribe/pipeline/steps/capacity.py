"""Step: a task of a provider at its quota ended, so its place goes to the uploads waiting for
one now, instead of at their next retry (the reconciler's run, up to its schedule away).

Only a job that itself waited for capacity passes its place on: while a provider turns uploads
away, the jobs it takes come from the queue, so each one that ends hands its place to the next
and the queue drains at the quota's pace; a provider never at its quota costs nothing here.
Best effort: whatever goes wrong, the waiting uploads are still retried by the reconciler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aws_lambda_powertools import Logger

from bucketscribe.domain.job import Job, JobState
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.pipeline.steps.intake import UploadOutcome
from bucketscribe.pipeline.steps.submission import continue_accepted
from bucketscribe.ports.provider import TaskProvider

logger = Logger(child=True)

# How many of the open jobs due soonest are looked through for ones waiting on this provider
# (one query of the due index, at most this many items read).
LOOKAHEAD = 50


def pass_on_capacity(
    finished: Iterable[Job | None], ports: PipelinePorts, *, out_of_time: Callable[[], bool] = lambda: False
) -> int:
    """Submit the uploads waiting longest for the provider of ``finished`` (jobs of one task
    that just ended), as many as one task carries. Returns how many the provider took."""
    freed = [job for job in finished if job is not None and job.state.is_final and job.capacity_waits]
    if not freed or out_of_time():
        return 0
    provider = freed[0].provider
    try:
        waiting = _waiting_for(provider, ports)
        if not waiting:
            return 0
        results = continue_accepted(waiting, ports, out_of_time=out_of_time)
    except Exception:
        logger.exception("Could not pass a freed place on; the queue waits for the reconciler")
        return 0
    taken = sum(result.outcome is UploadOutcome.SUBMITTED for result in results)
    logger.info(
        "A freed place passed on to the queue",
        extra={"provider": provider, "offered": len(waiting), "taken": taken},
    )
    return taken


def _waiting_for(provider: str, ports: PipelinePorts) -> list[Job]:
    now = ports.clock()
    served = ports.provider(provider)
    room = served.max_files_per_task if isinstance(served, TaskProvider) else 1
    # Waiting jobs are due within one retry interval (and spread over two): look that far ahead.
    horizon = now + 2 * ports.limits.capacity_retry_after
    candidates = [
        job
        for job in ports.jobs.due(horizon, limit=LOOKAHEAD)
        if job.state is JobState.ACCEPTED
        and job.capacity_waits
        and job.provider == provider
        and not job.leased(now)
    ]
    candidates.sort(key=lambda job: job.waiting_since or job.created_at)
    return candidates[:room]
