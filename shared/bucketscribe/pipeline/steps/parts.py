"""Use cases for uploads over their provider's limits: cut into parts, each a job of its own,
and merged back into one transcript.

Cutting (``split_upload``, while the upload is being prepared): each cut goes in the quietest
half second of the last ``SILENCE_SEARCH_MS`` before a part would pass the provider's limit;
each part is stored under the output prefix (the audio packets copied, or re-encoded when the
route says so), streamed, so memory does not grow with the recording. The upload's job then
records its parts and waits (SUBMITTED, no attempt of its own), and each part gets a job whose
source is the part's media: ACCEPTED and due, so the submitting worker (or, if it dies, the
reconciler) submits it like any upload, with attempts, evidence and deadlines of its own.

Merging (``check_parts``, when a part finishes and whenever the reconciler finds the upload's job
due): when every part is DONE, their transcripts (each stored when its part finished) are moved
to where the part starts in the upload and written as the upload's outputs; each part keeps the
speaker labels its provider gave it. When a part has failed, the upload's job fails with that
part's reason (and a result arriving late still wins, as for any job).
"""

from __future__ import annotations

from enum import StrEnum
from functools import partial

from aws_lambda_powertools import Logger

from bucketscribe.domain.job import Job, JobError, JobState, PartRef
from bucketscribe.domain.media_routing import MediaProbe, MediaRefused, MediaRequirements, RouteDecision
from bucketscribe.domain.transcript import (
    Coverage,
    Segment,
    Transcript,
    TranscriptWarning,
    TranslatedSegment,
    Translation,
    Word,
)
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.pipeline.steps.failures import fail_job
from bucketscribe.pipeline.steps.job_writes import apply
from bucketscribe.pipeline.steps.outputs import (
    Publication,
    json_output,
    named,
    publish,
    put_once,
    write_outputs,
)
from bucketscribe.ports.media_tools import MediaTools

logger = Logger(child=True)

# How far before a part's limit a quiet place to cut is looked for.
SILENCE_SEARCH_MS = 5 * 60 * 1000


class PartsOutcome(StrEnum):
    DONE = "DONE"  # all parts done: the merged transcript is written
    FAILED = "FAILED"  # a part failed: so did the upload's job
    PENDING = "PENDING"  # parts still running
    BUSY = "BUSY"  # another worker is writing the merged outputs
    ALREADY_FINAL = "ALREADY_FINAL"
    SUPERSEDED = "SUPERSEDED"  # a later upload of the key came first: nothing merged or written


# ----- names -------------------------------------------------------------------------------------


def part_job_id(parent: Job, index: int) -> str:
    return f"{parent.id}-part{index}"


def part_media_key(parent: Job, index: int, extension: str, ports: PipelinePorts) -> str:
    """Where a part's media goes: beside the upload's outputs, named for its revision (job id)."""
    return ports.layout.output_key(parent.source.key, f"{parent.id[:12]}.part-{index:02d}.speech.{extension}")


def part_result_key(part: Job) -> str:
    """Where a finished part keeps its transcript until the upload's job merges it."""
    return f"{part.source.key}.transcript.json"


# ----- cutting -----------------------------------------------------------------------------------


def split_upload(
    job: Job,
    probe: MediaProbe,
    decision: RouteDecision,
    needs: MediaRequirements,
    tools: MediaTools,
    ports: PipelinePorts,
) -> Job:
    """Cut the upload into parts as ``decision`` says, store them, and make the upload's job wait
    for their jobs. ``MediaRefused`` when a part comes out over the provider's limits anyway."""
    assert decision.target is not None and decision.part_ms is not None and probe.duration_ms is not None
    source, target = job.source, decision.target
    parts: list[PartRef] = []
    bounds = cut_points(source, probe.duration_ms, decision.part_ms, tools)
    for index, (start_ms, end_ms) in enumerate(bounds, start=1):
        key = part_media_key(job, index, target.extension, ports)
        stored = tools.write(source, key, target, start_ms=start_ms, end_ms=end_ms)
        if stored.output_bytes > needs.made_limit or stored.duration_ms > needs.max_duration_ms:
            raise MediaRefused(
                "FILE_TOO_LARGE",
                f"part {index} came out at {stored.output_bytes / 2**20:.0f} MB and "
                f"{stored.duration_ms / 3_600_000:.2f} h, over what {needs.provider} takes in one job",
            )
        parts.append(
            PartRef(
                index=index,
                job_id=part_job_id(job, index),
                key=key,
                start_ms=stored.start_ms,
                end_ms=stored.end_ms,
            )
        )
    logger.info(
        "Cut the upload into parts",
        extra={"job_id": job.id, "key": source.key, "parts": [(p.start_ms, p.end_ms) for p in parts]},
    )
    return _wait_for_parts(job.model_copy(update={"media": probe, "media_route": decision}), parts, ports)


def cut_points(
    source: ObjectRef, duration_ms: int, part_ms: int, tools: MediaTools
) -> list[tuple[int, int | None]]:
    """(start, end) of each part, at most ``part_ms`` long and cut at the quietest place of the
    last ``SILENCE_SEARCH_MS`` before that; the last part runs to the end of the audio (None)."""
    bounds: list[tuple[int, int | None]] = []
    start = 0
    while duration_ms - start > part_ms:
        limit = start + part_ms
        cut = tools.quietest_ms(source, max(start + part_ms // 2, limit - SILENCE_SEARCH_MS), limit)
        bounds.append((start, cut))
        start = cut
    bounds.append((start, None))
    return bounds


def resume_parts(job: Job, ports: PipelinePorts) -> Job:
    """A split upload's job re-driven: its failed parts are re-driven, finished ones stand."""
    now = ports.clock()
    for part in ensure_part_jobs(job, ports):
        if part.state is JobState.FAILED:
            apply(ports.jobs, part, partial(Job.redrive, now=now, reason="its upload's job was re-driven"))
    return _wait_for_parts(job, job.parts, ports)


def _wait_for_parts(job: Job, parts: list[PartRef], ports: PipelinePorts) -> Job:
    now = ports.clock()
    split = apply(
        ports.jobs,
        job,
        partial(
            Job.split_into_parts,
            now=now,
            parts=parts,
            probe=job.media,
            route=job.media_route,
            check_at=now + ports.limits.first_check_after,
            owner=job.claimed_by or "",
        ),
    )
    if split is None:
        # Another worker took the job over (our claim ran out): it records the parts itself.
        return ports.jobs.get(job.id) or job
    ensure_part_jobs(split, ports)
    return split


def ensure_part_jobs(parent: Job, ports: PipelinePorts) -> list[Job]:
    """The job of each of ``parent``'s parts, created where missing (the worker that split the
    upload may have died before making them all)."""
    jobs: list[Job] = []
    for part in parent.parts:
        existing = ports.jobs.get(part.job_id)
        if existing is None:
            existing = _create_part_job(parent, part, ports)
        if existing is not None:
            jobs.append(existing)
    return jobs


def _create_part_job(parent: Job, part: PartRef, ports: PipelinePorts) -> Job | None:
    bucket = parent.source.bucket
    info = ports.storage.head(bucket, part.key)
    if info is None:
        logger.warning("A part's media is missing", extra={"job_id": parent.id, "key": part.key})
        return None
    source = ObjectRef(
        bucket=bucket, key=part.key, etag=info.etag, version_id=info.version_id, size=info.size
    )
    fresh = Job.for_part(parent, part, source, now=ports.clock())
    return fresh if ports.jobs.create(fresh) else ports.jobs.get(part.job_id)


# ----- a part finishing --------------------------------------------------------------------------


def write_part_result(
    part: Job, transcript: Transcript, raw: dict[str, object] | None, ports: PipelinePorts
) -> list[str]:
    """A part's outputs: its transcript, kept for the merge, and the provider's raw result."""
    outputs = [(part_result_key(part), transcript.model_dump_json().encode("utf-8"), "application/json")]
    if raw is not None:
        outputs.append(json_output(f"{part.source.key}.{part.provider}.json", raw))
    return put_once(part, outputs, ports)


def part_finished(part: Job, ports: PipelinePorts) -> PartsOutcome | None:
    """After a part is DONE: merge its upload's transcript if it was the last one."""
    if part.part_of is None:
        return None
    parent = ports.jobs.get(part.part_of.parent_id)
    return check_parts(parent, ports) if parent is not None else None


# ----- merging -----------------------------------------------------------------------------------


def check_parts(parent: Job, ports: PipelinePorts) -> PartsOutcome:
    """Where a split upload's job stands: merged when all parts are done, failed when one failed."""
    if parent.state is JobState.DONE or (parent.state is JobState.FAILED and not parent.accepts_late_result):
        return PartsOutcome.ALREADY_FINAL
    parts = ensure_part_jobs(parent, ports)
    missing = len(parent.parts) - len(parts)
    if missing == 0 and all(part.state is JobState.DONE for part in parts):
        return _merge(parent, parts, ports)
    failed = next((part for part in parts if part.state is JobState.FAILED), None)
    if missing or failed is not None:
        if parent.state.is_final:
            return PartsOutcome.ALREADY_FINAL
        fail_job(parent, _failure(parent, failed), ports)
        return PartsOutcome.FAILED
    return PartsOutcome.PENDING


def _failure(parent: Job, failed: Job | None) -> JobError:
    if failed is None or failed.part_of is None:
        return JobError(code="PART_MISSING", message="the media of a part is gone from the bucket")
    where = failed.part_of
    error = failed.error or JobError(code="PART_FAILED", message="it failed without a recorded reason")
    return JobError(
        code=error.code,
        message=f"part {where.index} of {where.count} ({_clock(where.start_ms)}–{_clock(where.end_ms)}) "
        f"failed: {error.message}",
        retryable=error.retryable,
    )


def _clock(ms: int) -> str:
    seconds = ms // 1000
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _merge(parent: Job, parts: list[Job], ports: PipelinePorts) -> PartsOutcome:
    bucket = parent.source.bucket
    pieces = [
        (ref, Transcript.model_validate_json(ports.storage.get(bucket, part_result_key(part))))
        for ref, part in zip(parent.parts, parts, strict=True)
    ]
    merged = named(parent, merge_transcripts(parent, pieces), ports)
    raws = [key for part in parts for key in part.outputs if key != part_result_key(part)]

    def write(job: Job) -> tuple[list[str], Transcript]:
        return [*raws, *write_outputs(job, merged, None, ports)], merged

    published = publish(parent, write, ports)
    if published.outcome is Publication.DONE:
        logger.info(
            "Merged the parts' transcripts",
            extra={"job_id": parent.id, "key": parent.source.key, "parts": len(parts)},
        )
    return PartsOutcome(published.outcome.value)


def merge_transcripts(parent: Job, pieces: list[tuple[PartRef, Transcript]]) -> Transcript:
    """One transcript of the whole upload from its parts', each moved to where its part starts."""
    segments: list[Segment] = []
    translations: dict[str, list[TranslatedSegment]] = {}
    speakers: dict[str, None] = {}
    warnings: list[TranscriptWarning] = []
    for ref, piece in pieces:
        shift = ref.start_ms
        segments.extend(_shifted(segment, shift) for segment in piece.segments)
        speakers.update(dict.fromkeys(piece.speakers))
        warnings.extend(_shifted_warning(warning, ref) for warning in piece.warnings)
        for translation in piece.translations:
            translations.setdefault(translation.language, []).extend(
                TranslatedSegment(start_ms=s.start_ms + shift, end_ms=s.end_ms + shift, text=s.text)
                for s in translation.segments
            )
    first = pieces[0][1]
    ends = [ref.end_ms for ref, _ in pieces]
    duration = parent.media.duration_ms if parent.media and parent.media.duration_ms else max(ends)
    return Transcript(
        provider=parent.provider,
        model=first.model,
        language=first.language,
        duration_ms=duration,
        channels=max((piece.channels or 0 for _, piece in pieces), default=0) or None,
        speakers=list(speakers),
        segments=segments,
        translations=[Translation(language=lang, segments=segs) for lang, segs in translations.items()],
        coverage=_merged_coverage([piece.coverage for _, piece in pieces]),
        warnings=warnings,
    )


def _merged_coverage(found: list[Coverage | None]) -> Coverage | None:
    """The parts' coverage added up; None unless every part was checked on the same evidence."""
    checked = [coverage for coverage in found if coverage is not None]
    if len(checked) != len(found) or len({coverage.basis for coverage in checked}) != 1:
        return None
    covered = sum(coverage.covered_ms for coverage in checked)
    speech = [coverage.speech_ms for coverage in checked]
    if any(ms is None for ms in speech):
        return Coverage(basis=checked[0].basis, covered_ms=covered)
    speech_ms = sum(ms or 0 for ms in speech)
    ratio = min(1.0, covered / speech_ms) if speech_ms else 1.0
    return Coverage(basis=checked[0].basis, speech_ms=speech_ms, covered_ms=covered, ratio=round(ratio, 4))


def _shifted_warning(warning: TranscriptWarning, ref: PartRef) -> TranscriptWarning:
    """A part's warning placed in the upload's time (its message keeps the part's own times)."""
    shift = ref.start_ms
    return warning.model_copy(
        update={
            "start_ms": None if warning.start_ms is None else warning.start_ms + shift,
            "end_ms": None if warning.end_ms is None else warning.end_ms + shift,
            "message": f"part {ref.index} (from {_clock(shift)}): {warning.message}",
        }
    )


def _shifted(segment: Segment, shift: int) -> Segment:
    return segment.model_copy(
        update={
            "start_ms": segment.start_ms + shift,
            "end_ms": segment.end_ms + shift,
            "words": [
                Word(start_ms=w.start_ms + shift, end_ms=w.end_ms + shift, text=w.text) for w in segment.words
            ],
        }
    )
