"""A provider's answer kept in the bucket when the job store cannot take it.

The intent to submit is written before the provider is called; the provider's answer (the task
id) is written after. If the job store is down for longer than the submitting worker can wait,
that answer would be lost with the worker — and for a provider without a task listing the
reconciler could then only wait for the attempt's callback and, without it, pay for a second
job. So the answer goes to the bucket instead, under the output prefix (never an upload), one
small object per attempt; the reconciler reads it before anything else when it resolves the
attempt, binds the task, and removes it. Written only when the job store refused, so it costs
nothing on the common path.
"""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from bucketscribe.domain.job import Job
from bucketscribe.pipeline.context import PipelinePorts

RECEIPTS_FOLDER = "_receipts"


class Receipt(BaseModel):
    job_id: str
    attempt: int
    provider: str
    task_id: str
    provider_file: str | None = None


def receipt_key(job_id: str, attempt: int, ports: PipelinePorts) -> str:
    return f"{ports.layout.output_prefix}{RECEIPTS_FOLDER}/{job_id}.{attempt}.json"


def keep_receipt(job: Job, receipt: Receipt, ports: PipelinePorts) -> None:
    ports.storage.put(
        job.source.bucket,
        receipt_key(job.id, receipt.attempt, ports),
        receipt.model_dump_json().encode("utf-8"),
        content_type="application/json",
    )


def find_receipt(job: Job, attempt: int, ports: PipelinePorts) -> Receipt | None:
    """The answer kept for ``job``'s attempt, if its worker had to keep one."""
    key = receipt_key(job.id, attempt, ports)
    if ports.storage.head(job.source.bucket, key) is None:
        return None
    try:
        receipt = Receipt.model_validate_json(ports.storage.get(job.source.bucket, key))
    except ValidationError:
        return None
    same = receipt.job_id == job.id and receipt.attempt == attempt and receipt.provider == job.provider
    return receipt if same else None


def drop_receipt(job: Job, attempt: int, ports: PipelinePorts) -> None:
    ports.storage.delete(job.source.bucket, receipt_key(job.id, attempt, ports))
