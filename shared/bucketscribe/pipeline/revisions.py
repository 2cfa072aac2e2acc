"""Whose outputs these are: the outputs beside a key belong to its latest upload.

A key uploaded again while its first version is still at the provider has two jobs (each revision
has its own). The older one must not write or delete anything beside the key once the newer
exists — its transcript would replace the newer one's, its error report would sit beside the
newer transcript. The job store knows every revision's job (``JobStore.for_source``, newest
first), so one query answers both questions a finishing job has: is there a later upload (then
this job is SUPERSEDED and writes nothing), and did an earlier one fail (then its
``.error.json`` goes when this transcript is written).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from bucketscribe.job import Job, JobState
from bucketscribe.pipeline.job_writes import apply
from bucketscribe.pipeline.ports import PipelinePorts

logger = Logger(child=True)

# Revisions looked at: the latest few are all that can matter to one finishing job.
RELATED_LIMIT = 5


def revisions_of(job: Job, ports: PipelinePorts) -> list[Job]:
    """The jobs of every upload of ``job``'s key the store knows (newest first, this one included)."""
    return ports.jobs.for_source(job.source.bucket, job.source.key, limit=RELATED_LIMIT)


def later_upload(job: Job, revisions: list[Job]) -> Job | None:
    """The job of a later upload of the same key, if there is one."""
    return next(
        (other for other in revisions if other.id != job.id and other.created_at > job.created_at), None
    )


def earlier_failure_reported(job: Job, revisions: list[Job]) -> bool:
    """Whether an error report may stand where this job's transcript goes: this job failed before
    (a late result, a re-drive) or an earlier upload of the key did."""
    if job.error is not None or job.redrives:
        return True
    return any(
        other.id != job.id and other.state is JobState.FAILED and other.created_at <= job.created_at
        for other in revisions
    )


def supersede(job: Job, newer: Job, ports: PipelinePorts) -> Job | None:
    """End ``job`` as SUPERSEDED by ``newer``; ``None`` when it had meanwhile ended another way."""
    now = ports.clock()
    ended = apply(ports.jobs, job, lambda current: current.supersede(now, by=newer.id))
    if ended is not None:
        logger.info(
            "A later upload of the key replaced this one; nothing written",
            extra={"job_id": job.id, "key": job.source.key, "superseded_by": newer.id},
        )
    return ended
