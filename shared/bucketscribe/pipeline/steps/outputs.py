"""Writing a finished job's outputs, once: the provider's raw result and the transcript in every
format its profile asks for, beside the upload's name under the output prefix."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from enum import StrEnum
from functools import partial
from typing import Any, NamedTuple

from bucketscribe.domain.job import Job
from bucketscribe.domain.profile import ALL_OUTPUTS
from bucketscribe.domain.transcript import Transcript
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.pipeline.steps.failures import remove_error_report
from bucketscribe.pipeline.steps.job_writes import apply, new_owner
from bucketscribe.pipeline.steps.revisions import replaced_by, supersede
from bucketscribe.pipeline.steps.side_by_side import both, side_by_side
from bucketscribe.ports.storage import ObjectUnreadable

Output = tuple[str, bytes, str]
"""(key, body, content type)"""


def named(job: Job, transcript: Transcript, ports: PipelinePorts) -> Transcript:
    """The transcript naming its upload, provider, model and language, as the outputs carry it."""
    profile = ports.profiles.find(job.profile)
    return transcript.model_copy(
        update={
            "source": job.source,
            "provider": job.provider,
            "model": transcript.model or job.model,
            "language": transcript.language or (profile.language if profile else None),
        }
    )


def write_outputs(
    job: Job, transcript: Transcript, raw: dict[str, Any] | None, ports: PipelinePorts
) -> list[str]:
    """Write the provider's ``raw`` result and ``transcript`` in the profile's formats; returns
    the keys written."""
    # Imported here: a submit function's cold start never renders (bench/cold_import.py).
    from bucketscribe.render import CONTENT_TYPES, render

    profile = ports.profiles.find(job.profile)
    layout = ports.layout
    bodies: list[Output] = []
    if raw is not None:
        bodies.append(json_output(layout.output_key(job.source.key, f"{job.provider}.json"), raw))
    formats = profile.outputs if profile else list(ALL_OUTPUTS)
    options = profile.render if profile else None
    for fmt in formats:
        body = render(transcript, fmt, options).encode("utf-8")
        bodies.append((layout.output_key(job.source.key, fmt), body, CONTENT_TYPES[fmt]))
    # A translated transcript (real-time translation) also gets bilingual subtitles per language:
    # <key>.<lang>.srt / .vtt, the original line over the translated one.
    for translation in transcript.translations:
        for fmt in ("srt", "vtt"):
            if fmt in formats and translation.segments:
                body = render(transcript, fmt, options, translation=translation.language).encode("utf-8")
                key = layout.output_key(job.source.key, f"{translation.language}.{fmt}")
                bodies.append((key, body, CONTENT_TYPES[fmt]))
    return put_once(job, bodies, ports)


def json_output(key: str, data: Any) -> Output:
    return key, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json"


def put_once(job: Job, outputs: list[Output], ports: PipelinePorts) -> list[str]:
    """Put the job's outputs, side by side (each is a round trip of waiting: five one after the
    other are most of a callback's time); returns their keys. A worker that died part-way left
    some outputs behind: those already right are not written again."""
    resumed = job.finishings > 1

    def put(output: Output) -> None:
        key, body, content_type = output
        if not (resumed and _already_there(job.source.bucket, key, body, ports)):
            ports.storage.put(job.source.bucket, key, body, content_type=content_type)

    side_by_side(put, outputs, ports.limits.side_by_side)
    return [key for key, _, _ in outputs]


def _already_there(bucket: str, key: str, body: bytes, ports: PipelinePorts) -> bool:
    info = ports.storage.head(bucket, key)
    # A single-part upload's ETag is the MD5 of its bytes (on every S3-compatible store).
    return info is not None and info.etag == hashlib.md5(body, usedforsecurity=False).hexdigest()


def _newer_upload(job: Job, ports: PipelinePorts) -> tuple[str | None, ObjectUnreadable | None]:
    """``replaced_by``, or the refusal to read the key: raised only by the worker that takes the
    lease (another worker is finishing the job, or has)."""
    try:
        return replaced_by(job, ports), None
    except ObjectUnreadable as refused:
        return None, refused


class Publication(StrEnum):
    DONE = "DONE"
    BUSY = "BUSY"  # another worker is writing the outputs right now
    ALREADY_FINAL = "ALREADY_FINAL"
    SUPERSEDED = "SUPERSEDED"  # a later upload of the key came first: nothing was written


class Published(NamedTuple):
    outcome: Publication
    job: Job | None  # the job as it stands afterwards


def publish(
    job: Job, write: Callable[[Job], tuple[list[str], Transcript]], ports: PipelinePorts
) -> Published:
    """Take the job's finishing lease, ``write`` its outputs, and mark it DONE with them and with
    what the written transcript says of itself (coverage, warnings, the model that ran): the one
    worker holding the lease writes them, so they are written once. Outputs belong to the latest
    upload of the key: a job a later upload replaced writes nothing (SUPERSEDED)."""
    now = ports.clock()
    owner = new_owner()
    take_lease = partial(
        apply,
        ports.jobs,
        job,
        partial(Job.begin_finishing, now=now, until=now + ports.limits.finish_lease, owner=owner),
    )
    if job.part_of is None:
        # Whether a later upload stands under the key is asked while the lease is taken (one
        # round trip less before the outputs; a lease not taken wasted a HEAD, a repeat's).
        finishing, (newer, unreadable) = both(take_lease, partial(_newer_upload, job, ports))
    else:
        # A part's outputs are its own (named by its job id); its upload's merge is checked instead.
        finishing, (newer, unreadable) = take_lease(), (None, None)
    if finishing is None:
        current = ports.jobs.get(job.id)
        busy = current is None or not current.state.is_final
        return Published(Publication.BUSY if busy else Publication.ALREADY_FINAL, current)
    if unreadable is not None:
        raise unreadable
    if newer is not None:
        return Published(Publication.SUPERSEDED, supersede(finishing, newer, ports))
    if finishing.part_of is None:
        # A transcript now stands where an earlier failure's report may be: the report goes while
        # the outputs are made and written (a round trip less before DONE).
        (written, transcript), _ = both(
            partial(write, finishing), partial(remove_error_report, finishing, ports)
        )
    else:
        written, transcript = write(finishing)
    finish = partial(
        Job.finish,
        now=ports.clock(),
        outputs=written,
        owner=owner,
        coverage=transcript.coverage,
        warnings=transcript.warnings,
        model=transcript.model,
    )
    # The event of the job's end is written with DONE, and delivered once the outputs are there.
    from bucketscribe.pipeline.steps.notify import announced, deliver_now  # only where a job ends

    done = apply(ports.jobs, finishing, lambda current: announced(finish(current), ports))
    if done is None:
        return Published(Publication.ALREADY_FINAL, ports.jobs.get(job.id))
    return Published(Publication.DONE, deliver_now(done, ports))
