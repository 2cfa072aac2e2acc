"""Whose outputs these are: the outputs beside a key belong to the upload that stands there now.

A key uploaded again while its first version is still at the provider has two jobs (each revision
has its own). The older one must not write or delete anything beside the key once the newer is
there — its transcript would replace the newer one's, its error report would sit beside the newer
transcript — whatever order the notifications came in. The bucket is the truth: one HEAD of the
key says which upload stands there now. A key that was deleted has no newer upload to protect:
its job still writes (the user may want the transcript of what they deleted).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from bucketscribe.domain.job import Job
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.pipeline.steps.job_writes import apply
from bucketscribe.ports.storage import ObjectInfo

logger = Logger(child=True)


def is_same_upload(source: ObjectRef, info: ObjectInfo) -> bool:
    """Whether ``info`` (a HEAD of the key) describes the upload ``source`` is: the same version
    where the bucket keeps versions, else the same ETag (a suspended bucket's "null" version is
    overwritten in place, so only the ETag tells its uploads apart)."""
    if source.version_id and source.version_id != "null" and info.version_id:
        return source.version_id == info.version_id
    return bool(info.etag) and (info.etag or "").strip('"') == (source.etag or "").strip('"')


def replaced_by(job: Job, ports: PipelinePorts) -> str | None:
    """The job id of the later upload that stands under ``job``'s key now, if one does."""
    source = job.source
    info = ports.storage.head(source.bucket, source.key)
    if info is None or is_same_upload(source, info):
        return None
    current = ObjectRef(
        bucket=source.bucket, key=source.key, version_id=info.version_id, etag=info.etag, size=info.size
    )
    return current.job_id()


def supersede(job: Job, newer: str, ports: PipelinePorts) -> Job | None:
    """End ``job`` as SUPERSEDED by job ``newer``; ``None`` when it had meanwhile ended another way."""
    now = ports.clock()
    ended = apply(ports.jobs, job, lambda current: current.supersede(now, by=newer))
    if ended is not None:
        logger.info(
            "A later upload of the key replaced this one; nothing written",
            extra={"job_id": job.id, "key": job.source.key, "superseded_by": newer},
        )
    return ended
