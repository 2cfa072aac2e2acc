"""Use case: finish the jobs whose completion never arrived, so a lost callback never loses a file.

Runs on a schedule. It reads only the jobs that are due (an index on open state +
next-check time, never a table scan), asks the provider once per task (within the
provider's query rate), finishes what is finished, backs off exponentially on
what is not, and fails, with the reason, what is still unfinished at the deadline.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from bucketscribe.model import Job, JobError, JobState
from bucketscribe.pipeline.complete import CompletionOutcome, apply_task_result
from bucketscribe.pipeline.ports import PipelinePorts
from bucketscribe.pipeline.submit import NEVER_SUBMITTED, fail_job
from bucketscribe.providers.base import ProviderError

logger = Logger(child=True)


class ReconcileReport(BaseModel):
    due: int = 0
    tasks_fetched: int = 0
    finished: int = 0
    failed: int = 0
    still_pending: int = 0
    provider_errors: int = 0
    left_for_next_run: int = 0
    audio_ms: int = 0


def reconcile(
    ports: PipelinePorts, *, limit: int = 500, out_of_time: Callable[[], bool] = lambda: False
) -> ReconcileReport:
    """One pass over the due jobs; stops early when ``out_of_time`` (the rest stay due)."""
    now = ports.clock()
    due = ports.jobs.due(now, limit=limit)
    report = ReconcileReport(due=len(due))
    by_task: dict[tuple[str, str | None], list[Job]] = defaultdict(list)
    for job in due:
        by_task[(job.provider, job.provider_task_id)].append(job)
    for (provider, task_id), jobs in by_task.items():
        if out_of_time():
            report.left_for_next_run += len(jobs)
            continue
        if task_id is None:
            _never_submitted(jobs, now, ports, report)
            continue
        try:
            result = ports.provider(provider).fetch(task_id)
        except ProviderError as exc:
            report.provider_errors += 1
            logger.warning(
                "Could not ask the provider about a task",
                extra={
                    "provider": provider,
                    "task_id": task_id,
                    "code": exc.code,
                    "provider_message": exc.message,
                },
            )
            for job in jobs:
                _pending(job, now, ports, report, why=f"{exc.code}: {exc.message}")
            continue
        report.tasks_fetched += 1
        for job in jobs:
            if out_of_time():
                report.left_for_next_run += 1
                continue
            try:
                completion = apply_task_result(job, result, ports)
            except Exception as exc:
                # One job's trouble (an expired result link, an odd reply, a storage error)
                # must not stop the others: it backs off and fails at the deadline if it lasts.
                logger.exception("Could not finish a job", extra={"job_id": job.id, "task_id": task_id})
                report.provider_errors += 1
                _pending(job, now, ports, report, why=f"{type(exc).__name__}: {exc}")
                continue
            if completion.outcome is CompletionOutcome.DONE:
                report.finished += 1
                report.audio_ms += completion.audio_ms or 0
            elif completion.outcome is CompletionOutcome.FAILED:
                report.failed += 1
            elif completion.outcome is CompletionOutcome.PENDING:
                _pending(job, now, ports, report, why="the provider is still working on it")
    logger.info("Reconciled", extra=report.model_dump())
    return report


def _pending(job: Job, now: datetime, ports: PipelinePorts, report: ReconcileReport, *, why: str) -> None:
    limits = ports.limits
    started = job.submitted_at or job.created_at
    if now - started > limits.job_deadline:
        hours = limits.job_deadline.total_seconds() / 3600
        error = JobError(
            code="PROVIDER_TIMEOUT",
            message=f"{job.provider} did not finish task {job.provider_task_id} within {hours:g} h ({why})",
        )
        fail_job(job, error, ports)
        report.failed += 1
        return
    interval = min(limits.first_check_after * (2**job.checks), limits.max_check_interval)
    later = job.model_copy(
        update={"next_check_at": now + interval, "checks": job.checks + 1, "updated_at": now}
    )
    ports.jobs.replace(later, expected=[job.state])
    report.still_pending += 1


def _never_submitted(jobs: list[Job], now: datetime, ports: PipelinePorts, report: ReconcileReport) -> None:
    for job in jobs:
        if job.state is not JobState.ACCEPTED:
            continue
        if now - job.created_at > ports.limits.job_deadline:
            reason = job.error.message if job.error else "no attempt got through"
            error = JobError(
                code=NEVER_SUBMITTED,
                message=f"the upload could not be submitted to {job.provider} ({reason}); "
                "its notification is in the dead-letter queue and can be re-driven",
            )
            fail_job(job, error, ports)
            report.failed += 1
        else:
            _pending(job, now, ports, report, why="not submitted yet")
