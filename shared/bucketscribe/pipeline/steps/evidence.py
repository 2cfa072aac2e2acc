"""Resolving submissions whose outcome is unknown, from evidence — never by sending them blindly again.

An attempt is unresolved when its worker died after writing the intent, or the provider's answer
was lost (timeout, connection reset, 5xx, our own write failing). Evidence that it created a
task, in the order it is looked for:

0. the provider's answer itself, kept in the bucket by a worker whose job store was down for
   longer than it could wait (``receipts.py``);
1. its callback (a provider that ``CallsBack``): the URL's token names the attempt, so
   ``complete_callback`` binds the
   task the callback names once the provider confirms when it was created — nothing to do here
   but wait for it, up to ``evidence_wait``;
2. the provider's own records (a provider that ``SearchesTasks``): tasks listed by creation time
   around the attempt, each finished one naming its files, matched against the media the attempt sent.

A real-time stream (a provider with neither) leaves no evidence at all: it is abandoned as soon
as its worker's lease has run out (see pipeline/realtime.py for the residual cost and its bound).

Only when the bounded wait passes with no evidence is the attempt abandoned and a new one made;
a task of the abandoned attempt that surfaces later is still recognised and bound, so its
result is used, not paid for and thrown away. For a provider that only calls back, that leaves one
residual case, documented in the README: the answer lost *and* the callback lost → a second job
after ``evidence_wait``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from aws_lambda_powertools import Logger
from pydantic import BaseModel, Field

from bucketscribe.domain.job import Attempt, Job
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.pipeline.steps.job_writes import apply
from bucketscribe.pipeline.steps.receipts import drop_receipt, find_receipt
from bucketscribe.ports.provider import CallsBack, Provider, ProviderError, SearchesTasks, TaskProvider

logger = Logger(child=True)

# Attempts started this close together are searched with one listing.
SEARCH_CLUSTER_GAP = timedelta(minutes=10)


class Resolution(BaseModel):
    bound: list[Job] = Field(default_factory=list)  # a task was found: poll it now
    abandoned: list[Job] = Field(default_factory=list)  # no evidence within the bound: submit again
    still_pending: int = 0  # waiting for evidence that may still come
    provider_errors: int = 0  # the provider's listing could not be read
    left_for_next_run: int = 0
    units_failed: int = 0  # jobs (or listings) whose handling raised; they stay due


def resolve_uncertain(jobs: list[Job], ports: PipelinePorts, out_of_time: Callable[[], bool]) -> Resolution:
    resolution = Resolution()
    by_provider: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        by_provider[job.provider].append(job)
    for name, group in by_provider.items():
        if out_of_time():
            resolution.left_for_next_run += len(group)
            continue
        provider = ports.provider(name)
        group = [job for job in group if not _bound_from_receipt(job, provider, ports, resolution)]
        if isinstance(provider, SearchesTasks) and isinstance(provider, TaskProvider):
            # One listing serves a cluster of attempts: a cluster is the unit that fails alone.
            for cluster in _clusters(_listable(group, ports, resolution)):
                _isolated(resolution, partial(_search, provider, cluster, ports, resolution))
            continue
        wait = _await_callback if isinstance(provider, CallsBack) else _abandon_stream
        for job in group:
            _isolated(resolution, partial(wait, job, ports, resolution))
    return resolution


def _isolated(resolution: Resolution, unit: Callable[[], object]) -> None:
    """Run one unit of resolution; one that raises is logged and counted, and its jobs stay due."""
    try:
        unit()
    except Exception:
        logger.exception("Could not resolve an uncertain submission; it stays due")
        resolution.units_failed += 1


def _attempt(job: Job) -> Attempt:
    attempt = job.current_attempt
    assert attempt is not None, "a SUBMITTING job has an attempt"
    return attempt


def _bound_from_receipt(job: Job, provider: Provider, ports: PipelinePorts, resolution: Resolution) -> bool:
    """The provider's answer, kept in the bucket by a worker the job store refused (receipts.py):
    the best evidence there is. True when it settled the job (bound, or found not to apply)."""
    attempt = _attempt(job)
    try:
        receipt = find_receipt(job, attempt.number, ports)
        if receipt is None:
            return False
        files = {job.id: receipt.provider_file or ""}
        recorded = ports.jobs.bind_task(
            provider.name, receipt.task_id, files, exclusive=_one_file_per_task(provider)
        )
        now = ports.clock()
        bound = None
        if recorded.get(job.id) == files[job.id]:
            bind = partial(
                Job.bind_task,
                now=now,
                number=attempt.number,
                task_id=receipt.task_id,
                provider_file=receipt.provider_file,
                check_at=now,
                bound_by="receipt",
            )
            bound = apply(ports.jobs, job, bind)
        if bound is not None:
            logger.info(
                "Bound the task its worker kept in the bucket",
                extra={"job_id": job.id, "task_id": receipt.task_id, "attempt": attempt.number},
            )
            resolution.bound.append(bound)
        drop_receipt(job, attempt.number, ports)
        return bound is not None
    except Exception:
        logger.exception("Could not read a kept answer; looking for other evidence", extra={"job_id": job.id})
        resolution.units_failed += 1
        return False


def _await_callback(job: Job, ports: PipelinePorts, resolution: Resolution) -> None:
    now = ports.clock()
    waited_until = _attempt(job).started_at + ports.limits.evidence_wait
    if now < waited_until:
        apply(ports.jobs, job, partial(Job.check_later, now=now, at=waited_until))
        resolution.still_pending += 1
    else:
        _abandon(job, ports, resolution, why=f"no callback within {_hours(ports.limits.evidence_wait)}")


def _abandon_stream(job: Job, ports: PipelinePorts, resolution: Resolution) -> None:
    """Real-time mode: an attempt is a stream, and its results went only to the worker that
    streamed it. Nothing can ever be found for it, so once its lease has run out (the worker is
    gone) it is abandoned at once and the upload streamed again (bounded: pipeline/realtime.py)."""
    _abandon(
        job,
        ports,
        resolution,
        why="its stream was cut short (the worker stopped); a stream leaves nothing to find",
    )


def _listable(jobs: list[Job], ports: PipelinePorts, resolution: Resolution) -> list[Job]:
    """The jobs whose task would show in the listing by now; the others are looked at then."""
    now = ports.clock()
    ready: list[Job] = []
    for job in jobs:
        listable_at = _attempt(job).started_at + ports.limits.search_delay
        if now < listable_at:
            _isolated(
                resolution, partial(apply, ports.jobs, job, partial(Job.check_later, now=now, at=listable_at))
            )
        else:
            ready.append(job)
    return ready


def _one_file_per_task(provider: Provider) -> bool:
    """Whether a task of this provider carries one job only (then a task bound is bound for good)."""
    return not isinstance(provider, TaskProvider) or provider.max_files_per_task == 1


class _ListingProvider(TaskProvider, SearchesTasks, Protocol):
    """A provider whose tasks can be listed (what ``_search`` needs)."""


def _search(
    provider: _ListingProvider, cluster: list[Job], ports: PipelinePorts, resolution: Resolution
) -> None:
    now = ports.clock()
    limits = ports.limits
    starts = [_attempt(job).started_at for job in cluster]
    files = {f for job in cluster if (f := _attempt(job).provider_file)}
    try:
        search = provider.search_tasks(
            min(starts) - limits.clock_skew, max(starts) + limits.clock_skew + limits.search_delay, files
        )
    except ProviderError as exc:
        resolution.provider_errors += 1
        logger.warning(
            "Could not list the provider's tasks",
            extra={"code": exc.code, "provider_message": exc.message},
        )
        for job in cluster:
            _check_again(job, now, ports)
        return
    _bind_found(provider, cluster, search.found, ports, resolution)
    bound = {job.id for job in resolution.bound}
    for job in cluster:
        if job.id in bound or _attempt(job).provider_file in search.found:
            continue
        if search.undecided and now < _attempt(job).started_at + limits.evidence_wait:
            # Some task of the window has not finished, so it does not show its files yet.
            _check_again(job, now, ports)
            resolution.still_pending += 1
        else:
            _abandon(
                job, ports, resolution, why="the provider lists no task carrying this file", listed_none=True
            )


def _bind_found(
    provider: _ListingProvider,
    jobs: list[Job],
    found: dict[str, str],
    ports: PipelinePorts,
    resolution: Resolution,
) -> None:
    by_task: dict[str, dict[str, Job]] = defaultdict(dict)
    for job in jobs:
        file = _attempt(job).provider_file
        if file in found:
            by_task[found[file]][job.id] = job
    for task_id, task_jobs in by_task.items():
        files = {job_id: _attempt(job).provider_file or "" for job_id, job in task_jobs.items()}
        recorded = ports.jobs.bind_task(
            provider.name, task_id, files, exclusive=provider.max_files_per_task == 1
        )
        now = ports.clock()
        for job_id, job in task_jobs.items():
            attempt = _attempt(job)
            if recorded.get(job_id) != attempt.provider_file:
                continue
            bound = apply(
                ports.jobs,
                job,
                partial(
                    Job.bind_task,
                    now=now,
                    number=attempt.number,
                    task_id=task_id,
                    provider_file=attempt.provider_file,
                    check_at=now,
                    bound_by="listing",
                ),
            )
            if bound is not None:
                logger.info(
                    "Bound a task found in the provider's listing",
                    extra={"job_id": job_id, "task_id": task_id, "attempt": attempt.number},
                )
                resolution.bound.append(bound)


def _clusters(jobs: list[Job]) -> list[list[Job]]:
    ordered = sorted(jobs, key=lambda job: _attempt(job).started_at)
    clusters: list[list[Job]] = []
    for job in ordered:
        if (
            clusters
            and _attempt(job).started_at - _attempt(clusters[-1][-1]).started_at <= SEARCH_CLUSTER_GAP
        ):
            clusters[-1].append(job)
        else:
            clusters.append([job])
    return clusters


def _check_again(job: Job, now: datetime, ports: PipelinePorts) -> None:
    limits = ports.limits
    interval = min(limits.search_delay * (2**job.checks), limits.max_check_interval)
    apply(ports.jobs, job, lambda current: current.check_later(now, at=now + interval))


def _abandon(
    job: Job, ports: PipelinePorts, resolution: Resolution, *, why: str, listed_none: bool = False
) -> None:
    now = ports.clock()
    abandon = partial(Job.abandon_attempt, now=now, why=why, listed_none=listed_none)
    abandoned = apply(ports.jobs, job, abandon)
    if abandoned is not None:
        logger.warning(
            "No evidence that the attempt reached the provider; submitting again",
            extra={"job_id": job.id, "attempt": _attempt(job).number, "reason": why},
        )
        resolution.abandoned.append(abandoned)


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g} h"
