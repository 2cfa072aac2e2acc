"""Failing a job, and telling the user why: the FAILED record and ``<key>.error.json``.

The error report sits beside where the transcript would be. When the key is too long for that
(the storage's key limit), it goes under ``<output prefix>_errors/<job id>.error.json`` instead,
so every failed upload has a report a user can find.
"""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger

from bucketscribe.domain.job import Job, JobError
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.pipeline.steps.job_writes import apply
from bucketscribe.pipeline.steps.revisions import replaced_by, supersede
from bucketscribe.ports.storage import ObjectUnreadable

logger = Logger(child=True)

# Object stores limit a key to 1 024 bytes of UTF-8.
MAX_KEY_BYTES = 1024
# The longest suffix any object of ours gets (``.<provider>.json``, ``.<id>.speech.ogg``, a part's
# ``.<id>.part-01.speech.flac.transcript.json``, …).
LONGEST_OUTPUT_SUFFIX = ".0123456789ab.part-99.speech.flac.transcript.json"


def output_keys_fit(source_key: str, ports: PipelinePorts) -> bool:
    longest = ports.layout.output_key(source_key, LONGEST_OUTPUT_SUFFIX.lstrip("."))
    return len(longest.encode("utf-8")) <= MAX_KEY_BYTES


def error_report_key(job: Job, ports: PipelinePorts) -> str:
    if output_keys_fit(job.source.key, ports):
        return ports.layout.output_key(job.source.key, "error.json")
    return f"{ports.layout.output_prefix}_errors/{job.id}.error.json"


def fail_job(job: Job, error: JobError, ports: PipelinePorts) -> Job | None:
    """Mark the job FAILED (from whatever state it is in now) and write its error report — or,
    when a later upload of the key exists, mark it SUPERSEDED and write nothing.

    ``None`` when the job had meanwhile finished another way (its newer state stands).
    """
    if job.part_of is None and (newer := _replaced_by(job, ports)) is not None:
        return supersede(job, newer, ports)
    now = ports.clock()
    report = error_report_key(job, ports)
    # The event of the job's end is written with FAILED, and delivered once the report is there.
    from bucketscribe.pipeline.steps.notify import announced, deliver_now  # only where a job ends

    failed = apply(
        ports.jobs, job, lambda current: announced(current.fail(now, error), ports, error_report=report)
    )
    if failed is None:
        return None
    logger.warning(
        "Job failed",
        extra={"job_id": job.id, "key": job.source.key, "code": error.code, "reason": error.message},
    )
    if failed.part_of is not None:
        # A part: its upload's job fails with the reason and writes the report (pipeline/parts.py);
        # the reconciler looks at it at once.
        parent = ports.jobs.get(failed.part_of.parent_id)
        if parent is not None and not parent.state.is_final:
            apply(ports.jobs, parent, lambda current: current.check_later(now, at=now))
        return failed
    write_error_report(failed, ports)
    return deliver_now(failed, ports)


def _replaced_by(job: Job, ports: PipelinePorts) -> str | None:
    try:
        return replaced_by(job, ports)
    except ObjectUnreadable:
        return None  # what cannot be read cannot be told replaced: the report says why it failed


def write_error_report(job: Job, ports: PipelinePorts) -> None:
    """What failed and why, for the user, beside where the transcript would be."""
    error = job.error or JobError(code="UNKNOWN", message="the job failed without a recorded reason")
    report = {
        "source": {
            "bucket": job.source.bucket,
            "key": job.source.key,
            "etag": job.source.etag,
            "version_id": job.source.version_id,
        },
        "job_id": job.id,
        "error": error.model_dump(),
        "attempts": len(job.attempts),
        "failed_at": (job.finished_at or job.updated_at).isoformat(),
    }
    ports.storage.put(
        job.source.bucket,
        error_report_key(job, ports),
        json.dumps(report, ensure_ascii=False, indent=2).encode("utf-8"),
        content_type="application/json",
    )


def error_report_missing(job: Job, ports: PipelinePorts) -> bool:
    return ports.storage.head(job.source.bucket, error_report_key(job, ports)) is None


def remove_error_report(job: Job, ports: PipelinePorts) -> None:
    """A transcript now stands where an earlier failure's report may be (this job's own, or an
    earlier upload's of the key): the report goes. Deleting an absent object is no error and
    costs nothing, so nothing is read to find out first."""
    ports.storage.delete(job.source.bucket, error_report_key(job, ports))
