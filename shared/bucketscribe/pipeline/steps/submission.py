"""Step: uploads → claimed jobs → provider tasks (or streams), grouped as the providers take them.

One upload's unexpected error never stops the others. Uploads that share a profile ride
together (a provider may take up to 100 files per task); a profile that streams has each upload
streamed by this worker (``stream.py``), and hands uploads too long to stream to file
transcription. The reconciler's share — due ACCEPTED jobs submitted again — goes the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import partial
from typing import TypeVar

from aws_lambda_powertools import Logger

from bucketscribe.domain.job import Job, JobError, JobState
from bucketscribe.domain.media_sniff import kind_by_extension
from bucketscribe.domain.profile import Profile
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.context import PipelinePorts, TimeLeft
from bucketscribe.pipeline.steps.attempt import submit_chunk, unsuccessful, wait_for_capacity
from bucketscribe.pipeline.steps.intake import (
    UPLOAD_GONE,
    Rejection,
    UploadOutcome,
    UploadResult,
    accept_upload,
    job_result,
    prepare_media,
    reject,
    release,
    release_quietly,
    upload_unchanged,
    upload_unreadable,
)
from bucketscribe.pipeline.steps.job_writes import apply, describe_error, new_owner
from bucketscribe.pipeline.steps.parts import ensure_part_jobs
from bucketscribe.pipeline.steps.side_by_side import side_by_side
from bucketscribe.ports.provider import StreamingProvider, TaskProvider
from bucketscribe.ports.storage import ObjectUnreadable

logger = Logger(child=True)
T = TypeVar("T")


def take_uploads(
    refs: Iterable[ObjectRef],
    ports: PipelinePorts,
    *,
    out_of_time: Callable[[], bool] = lambda: False,
    time_left: TimeLeft = lambda: None,
) -> list[UploadResult]:
    """Accept and submit ``refs``; one result per ref, in order. One upload's unexpected error
    never stops the others; when ``out_of_time`` says so, the rest are handed back (RETRY).
    ``time_left`` bounds what a real-time profile may start streaming."""
    refs = list(refs)
    results: list[UploadResult | None] = [None] * len(refs)

    def accept(ref: ObjectRef) -> UploadResult | tuple[Job, Profile]:
        if out_of_time():
            return UploadResult(source=ref, outcome=UploadOutcome.RETRY, reason="out of time in this run")
        try:
            return accept_upload(ref, ports)
        except Exception as exc:
            logger.exception("Could not accept an upload; it will be retried", extra={"key": ref.key})
            return UploadResult(source=ref, outcome=UploadOutcome.RETRY, reason=describe_error(exc))

    # By profile as served: a real-time profile's uploads handed to file transcription go apart.
    ready: dict[tuple[str, str], list[tuple[int, Job, Profile]]] = defaultdict(list)
    for index, accepted in enumerate(side_by_side(accept, refs, ports.limits.side_by_side)):
        if isinstance(accepted, UploadResult):
            results[index] = accepted
        elif accepted[0].parts:
            results[index] = submit_parts(accepted[0], ports)
        else:
            job, profile = accepted
            ready[(profile.name, profile.provider)].append((index, job, profile))
    for group in ready.values():
        outcomes = submit_jobs(
            [job for _, job, _ in group], group[0][2], ports, out_of_time=out_of_time, time_left=time_left
        )
        for (index, _, _), outcome in zip(group, outcomes, strict=True):
            results[index] = outcome
    return [result for result in results if result is not None]


def submit_jobs(
    jobs: list[Job],
    profile: Profile,
    ports: PipelinePorts,
    *,
    out_of_time: Callable[[], bool] = lambda: False,
    time_left: TimeLeft = lambda: None,
) -> list[UploadResult]:
    """Submit claimed, prepared ACCEPTED jobs of one profile; one result per job, in order."""
    provider = ports.provider(profile.provider)
    if isinstance(provider, StreamingProvider):
        return _stream_or_route(jobs, profile, provider, ports, out_of_time, time_left)
    if not isinstance(provider, TaskProvider):
        raise LookupError(f"provider {provider.name!r} takes neither tasks nor streams")
    size = max(provider.max_files_per_task, 1)

    def keep_trying() -> bool:
        # Recording a provider's answer outlasts a job-store outage for as long as this run may.
        return not out_of_time()

    full: list[JobError] = []  # the provider said its quota is full: the rest wait, unsent

    def submit(chunk: list[Job]) -> list[UploadResult]:
        if full:
            return [
                _guarded(job, ports, partial(wait_for_capacity, error=full[0], ports=ports)) for job in chunk
            ]
        try:
            outcomes = submit_chunk(chunk, profile, provider, ports, keep_trying)
        except Exception as exc:
            # Before any attempt started (e.g. the job store is down): nothing reached the provider.
            logger.exception(
                "Submitting failed before the provider was called", extra={"uploads": len(chunk)}
            )
            for job in chunk:
                release_quietly(job, ports)
            return [_retry(job, exc) for job in chunk]
        if any(outcome.outcome is UploadOutcome.WAITING for outcome in outcomes):
            full.append(
                JobError(
                    code="PROVIDER_AT_CAPACITY",
                    message=f"{provider.name} turned an upload of this run away for its quota; queued unsent",
                    retryable=True,
                )
            )
        return outcomes

    # One-file tasks (SIS) go to the provider side by side; the chunks already sent when the quota
    # turns one away are turned away too, and wait in the queue alike.
    chunks = [jobs[start : start + size] for start in range(0, len(jobs), size)]
    return [
        outcome
        for outcomes in side_by_side(submit, chunks, ports.limits.side_by_side)
        for outcome in outcomes
    ]


def _stream_or_route(
    jobs: list[Job],
    profile: Profile,
    provider: StreamingProvider,
    ports: PipelinePorts,
    out_of_time: Callable[[], bool],
    time_left: TimeLeft,
) -> list[UploadResult]:
    """Real-time mode (steps/stream.py): each upload streamed by this worker; a refused stream
    recorded as any refused submission is; uploads too long to stream routed and submitted to file
    transcription as a batch profile's uploads are."""
    # Imported here: only a real-time profile streams (a cold start of a batch one never does).
    from bucketscribe.pipeline.steps.stream import stream_jobs

    outcomes = stream_jobs(jobs, profile, provider, ports, out_of_time=out_of_time, time_left=time_left)
    handed = {
        o.job.id: _guarded(o.job, ports, lambda job: _prepare(job, profile.serving(job.provider), ports))
        for o in outcomes
        if o.to_batch
    }
    ready = [prepared for prepared in handed.values() if isinstance(prepared, tuple)]
    batched: dict[str, UploadResult] = {}
    if ready:
        batch = ready[0][1]
        submitted = submit_jobs([job for job, _ in ready], batch, ports)
        batched = dict(zip([job.id for job, _ in ready], submitted, strict=True))
    results = []
    for outcome in outcomes:
        job = outcome.job
        if outcome.to_batch:
            prepared = handed[job.id]
            results.append(prepared if isinstance(prepared, UploadResult) else batched[job.id])
        elif outcome.failed is not None:
            record = partial(unsuccessful, exc=outcome.failed, provider=provider, ports=ports)
            results.append(_guarded(job, ports, record))
        else:
            assert outcome.result is not None
            results.append(outcome.result)
    return results


def _guarded(job: Job, ports: PipelinePorts, step: Callable[[Job], T]) -> T | UploadResult:
    """``step(job)``, or RETRY when it raises: one upload's error never fails the others' delivery."""
    try:
        return step(job)
    except Exception as exc:
        logger.exception("Handling an upload failed; it will be retried", extra={"job_id": job.id})
        release_quietly(job, ports)
        return _retry(job, exc)


def continue_accepted(
    jobs: list[Job],
    ports: PipelinePorts,
    *,
    out_of_time: Callable[[], bool] = lambda: False,
    time_left: TimeLeft = lambda: None,
) -> list[UploadResult]:
    """The reconciler's share of submitting: due ACCEPTED jobs (refused before, a dead worker's,
    an abandoned or expired attempt, a re-drive) are claimed, checked and submitted again."""
    ready: dict[tuple[str, str], list[tuple[Job, Profile]]] = defaultdict(list)
    results: list[UploadResult] = []
    reclaimed = side_by_side(
        lambda job: _guarded(job, ports, lambda current: _reclaim(current, ports)),
        jobs,
        ports.limits.side_by_side,
    )
    for claimed in reclaimed:
        if isinstance(claimed, UploadResult):
            results.append(claimed)
        elif claimed is not None:
            ready[(claimed[1].name, claimed[1].provider)].append(claimed)
    for group in ready.values():
        results.extend(
            submit_jobs(
                [job for job, _ in group], group[0][1], ports, out_of_time=out_of_time, time_left=time_left
            )
        )
    return results


def _reclaim(job: Job, ports: PipelinePorts) -> tuple[Job, Profile] | UploadResult | None:
    now = ports.clock()
    owner = new_owner()
    claimed = apply(
        ports.jobs, job, partial(Job.claim, now=now, until=now + ports.limits.claim_lease, owner=owner)
    )
    if claimed is None:
        return None
    profile = ports.profiles.find(claimed.profile) or ports.profiles.match(
        ports.layout.relative(claimed.source.key)
    )
    try:
        unchanged = upload_unchanged(claimed, ports)
    except ObjectUnreadable as refused:
        return reject(claimed, upload_unreadable(refused), ports)
    if not unchanged:
        return reject(claimed, UPLOAD_GONE, ports)
    return _prepare(claimed, profile.serving(claimed.provider), ports)


def _prepare(job: Job, profile: Profile, ports: PipelinePorts) -> tuple[Job, Profile] | UploadResult:
    """A claimed job's media made ready for ``profile``'s provider (``prepare_media``): the job to
    submit, or what became of it (refused; a split upload's parts submitted)."""
    kind = kind_by_extension(job.source.key)
    try:
        if kind is None:
            raise Rejection("NOT_MEDIA", "the file extension is not an audio or video type")
        prepared = prepare_media(job, kind, profile, ports)
    except Rejection as rejection:
        return reject(job, rejection.error, ports)
    except Exception:
        release(job, ports)
        raise
    return submit_parts(prepared, ports) if prepared.parts else (prepared, profile)


def submit_parts(parent: Job, ports: PipelinePorts) -> UploadResult:
    """Submit the parts of a split upload that are due (all of them, just after the split); the
    upload counts as SUBMITTED when every part is, and is otherwise carried on by the reconciler."""
    due = [job for job in ensure_part_jobs(parent, ports) if job.state is JobState.ACCEPTED]
    outcomes = [result.outcome for result in continue_accepted(due, ports)]
    if all(outcome is UploadOutcome.SUBMITTED for outcome in outcomes):
        return UploadResult(source=parent.source, outcome=UploadOutcome.SUBMITTED, job_id=parent.id)
    waiting = sum(outcome is not UploadOutcome.SUBMITTED for outcome in outcomes)
    return job_result(
        parent, UploadOutcome.DEFERRED, f"{waiting} of its {len(parent.parts)} parts are not submitted yet"
    )


def _retry(job: Job, exc: Exception) -> UploadResult:
    return job_result(job, UploadOutcome.RETRY, describe_error(exc))
