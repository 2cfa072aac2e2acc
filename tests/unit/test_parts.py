"""An upload over its provider's limits: cut at quiet places into parts, each a job of its own
(attempts, evidence, reconciler), merged into one transcript with each part's offset and labels."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bucketscribe.domain.job import Job, JobError, JobState
from bucketscribe.domain.media_routing import MediaProbe
from bucketscribe.domain.transcript import Segment, Transcript, Word
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.pipeline.redrive import RedriveOutcome, redrive_job
from bucketscribe.pipeline.status import job_status
from bucketscribe.pipeline.submit import UploadOutcome, submit_uploads
from tests.fakes import FakeMediaTools, FakeProvider, InMemoryStorage, SettableClock

pytestmark = pytest.mark.unit

BUCKET = "recordings"
KEY = "incoming/long call.mp3"
MP3 = b"ID3" + bytes(4000)  # what the first bytes of an MP3 look like; the probe is faked
# The provider takes a minute per job here; the upload lasts 150 s and is quiet at 50 s and 100 s.
PART_LIMIT_MS = 60_000
UPLOAD_MS = 150_000
QUIET_MS = [20_000, 50_000, 100_000]


@pytest.fixture
def tools(ports: PipelinePorts, provider: FakeProvider) -> FakeMediaTools:
    ports.limits = replace(ports.limits, max_media_duration_s=3600, max_media_bytes=10**9)
    provider.max_duration_ms = PART_LIMIT_MS
    provider.max_bytes = 10**9
    tools = FakeMediaTools(bucket(ports))
    tools.probes[KEY] = MediaProbe(
        container="mp3",
        codec="mp3",
        channels=1,
        sample_rate=16000,
        duration_ms=UPLOAD_MS,
        size_bytes=0,
        has_video=False,
        audio_bit_rate=64_000,
    )
    tools.quiet_ms = list(QUIET_MS)
    ports.media_tools = tools
    return tools


def bucket(ports: PipelinePorts) -> InMemoryStorage:
    assert isinstance(ports.storage, InMemoryStorage)
    return ports.storage


def clock(ports: PipelinePorts) -> SettableClock:
    assert isinstance(ports.clock, SettableClock)
    return ports.clock


def split(ports: PipelinePorts) -> Job:
    bucket(ports).add(BUCKET, KEY, MP3)
    (result,) = submit_uploads([ObjectRef(bucket=BUCKET, key=KEY)], ports)
    assert result.outcome is UploadOutcome.SUBMITTED, result.reason
    job = ports.jobs.get(result.job_id or "")
    assert job is not None
    return job


def parts_of(ports: PipelinePorts, parent: Job) -> list[Job]:
    jobs = [ports.jobs.get(part.job_id) for part in parent.parts]
    assert all(job is not None for job in jobs)
    return [job for job in jobs if job is not None]


def said(*lines: tuple[int, int, str, str | None]) -> Transcript:
    """A part's transcript: (start, end, text, speaker) in the part's own time."""
    return Transcript(
        provider="sis",
        segments=[
            Segment(
                start_ms=start,
                end_ms=end,
                text=text,
                speaker=speaker,
                words=[Word(start_ms=start, end_ms=end, text=text.split()[0])],
            )
            for start, end, text, speaker in lines
        ],
        speakers=list(dict.fromkeys(speaker for *_, speaker in lines if speaker)),
    )


def finish_all(
    ports: PipelinePorts, provider: FakeProvider, parent: Job, transcripts: list[Transcript]
) -> None:
    for part, transcript in zip(parts_of(ports, parent), transcripts, strict=True):
        assert part.provider_task_id is not None
        provider.finish(part.provider_task_id, transcript)
    clock(ports).now += ports.limits.first_check_after
    reconcile(ports)


def test_an_upload_over_the_limit_is_cut_at_quiet_places_into_parts_each_submitted_as_its_own_job(
    ports: PipelinePorts, provider: FakeProvider, tools: FakeMediaTools
) -> None:
    parent = split(ports)
    assert parent.state is JobState.SUBMITTED and parent.attempts == []
    # The latest quiet place before each part's limit (less the margin): 50 s, then 100 s.
    assert [(p.start_ms, p.end_ms) for p in parent.parts] == [
        (0, 50_000),
        (50_000, 100_000),
        (100_000, 150_000),
    ]
    assert [w[3:] for w in tools.writes] == [(0, 50_000), (50_000, 100_000), (100_000, None)]
    keys = [p.key for p in parent.parts]
    assert keys == [f"transcripts/long call.mp3.{parent.id[:12]}.part-0{i}.speech.mp3" for i in (1, 2, 3)]
    parts = parts_of(ports, parent)
    assert [p.state for p in parts] == [JobState.SUBMITTED] * 3
    assert [p.part_of.index for p in parts if p.part_of] == [1, 2, 3]
    submitted_urls = [items[0].media_url for items, _ in provider.submissions]
    assert [url.split("?")[0].rsplit("/", 1)[1] for url in submitted_urls] == [
        k.rsplit("/", 1)[1] for k in keys
    ]
    assert parent.media is not None and parent.media.duration_ms == UPLOAD_MS
    assert parent.media_route is not None and "3 parts" in parent.media_route.reason


def test_the_parts_merge_into_one_transcript_with_their_offsets_and_their_own_labels(
    ports: PipelinePorts, provider: FakeProvider, tools: FakeMediaTools
) -> None:
    parent = split(ports)
    finish_all(
        ports,
        provider,
        parent,
        [
            said(
                (1_000, 4_000, "first part opens", "Speaker 1"),
                (45_000, 49_000, "first part ends", "Speaker 2"),
            ),
            said((500, 3_000, "second part", "Speaker 1")),
            said((2_000, 9_000, "third part", "Agent"), (8_000, 12_000, "overlapping reply", "User")),
        ],
    )
    done = ports.jobs.get(parent.id)
    assert done is not None and done.state is JobState.DONE
    merged = json.loads(bucket(ports).get(BUCKET, "transcripts/long call.mp3.json"))
    got = [(s["start_ms"], s["end_ms"], s["text"], s["speaker"]) for s in merged["segments"]]
    assert got == [
        (1_000, 4_000, "first part opens", "Speaker 1"),
        (45_000, 49_000, "first part ends", "Speaker 2"),
        (50_500, 53_000, "second part", "Speaker 1"),
        (102_000, 109_000, "third part", "Agent"),
        (108_000, 112_000, "overlapping reply", "User"),
    ]
    assert [s["words"][0]["start_ms"] for s in merged["segments"]] == [
        1_000,
        45_000,
        50_500,
        102_000,
        108_000,
    ]
    starts = [s["start_ms"] for s in merged["segments"]]
    assert starts == sorted(starts)
    assert merged["duration_ms"] == UPLOAD_MS and merged["source"]["key"] == KEY
    assert merged["speakers"] == ["Speaker 1", "Speaker 2", "Agent", "User"]
    txt = bucket(ports).get(BUCKET, "transcripts/long call.mp3.txt").decode()
    assert "third part" in txt
    # Each part kept its own transcript and the provider's raw result; only the upload has the formats.
    for part in parts_of(ports, parent):
        assert sorted(part.outputs) == sorted(
            [f"{part.source.key}.transcript.json", f"{part.source.key}.sis.json"]
        )
    assert {f"{p.source.key}.sis.json" for p in parts_of(ports, parent)} <= set(done.outputs)
    assert not any(key.startswith("transcripts/transcripts/") for key in bucket(ports).keys("transcripts/"))


def test_nothing_is_merged_while_a_part_is_still_running(
    ports: PipelinePorts, provider: FakeProvider, tools: FakeMediaTools
) -> None:
    parent = split(ports)
    first, *_ = parts_of(ports, parent)
    assert first.provider_task_id is not None
    provider.finish(first.provider_task_id, said((0, 1000, "only the first", None)))
    clock(ports).now += ports.limits.first_check_after
    report = reconcile(ports)
    assert report.finished == 1  # the first part; the upload's job waits, checked again later
    waiting = ports.jobs.get(parent.id)
    assert waiting is not None and waiting.state is JobState.SUBMITTED
    assert waiting.next_check_at is not None and waiting.next_check_at > ports.clock()
    assert "transcripts/long call.mp3.json" not in bucket(ports).keys("transcripts/")


def test_a_failed_part_fails_the_upload_with_its_reason_and_a_re_drive_runs_only_that_part(
    ports: PipelinePorts, provider: FakeProvider, tools: FakeMediaTools
) -> None:
    parent = split(ports)
    one, two, three = parts_of(ports, parent)
    assert one.provider_task_id and two.provider_task_id and three.provider_task_id
    provider.finish(one.provider_task_id, said((0, 1000, "one", None)))
    provider.fail(two.provider_task_id, JobError(code="SIS.0535", message="Audio format is invalid!"))
    provider.finish(three.provider_task_id, said((0, 1000, "three", None)))
    clock(ports).now += ports.limits.first_check_after
    reconcile(ports)  # the parts finish and fail; the failed one makes its upload's job due now
    reconcile(ports)
    failed = ports.jobs.get(parent.id)
    assert failed is not None and failed.state is JobState.FAILED and failed.error is not None
    assert failed.error.code == "SIS.0535"
    assert failed.error.message == "part 2 of 3 (0:00:50–0:01:40) failed: Audio format is invalid!"
    report = json.loads(bucket(ports).get(BUCKET, "transcripts/long call.mp3.error.json"))
    assert report["error"]["code"] == "SIS.0535" and report["source"]["key"] == KEY
    assert not any(k.endswith(".speech.mp3.error.json") for k in bucket(ports).keys("transcripts/"))
    # A part is re-driven through its upload's job, which re-runs only the part that failed.
    now = ports.clock()
    assert redrive_job(two.id, ports.jobs, now=now, reason="retry").outcome is RedriveOutcome.PART
    assert redrive_job(parent.id, ports.jobs, now=now, reason="retry").outcome is RedriveOutcome.REDRIVEN
    reconcile(ports)
    assert len(provider.tasks_for(two.id)) == 2
    assert len(provider.tasks_for(one.id)) == len(provider.tasks_for(three.id)) == 1
    assert len(tools.writes) == 3  # not cut again
    again = ports.jobs.get(two.id)
    assert again is not None and again.provider_task_id is not None
    provider.finish(again.provider_task_id, said((0, 1000, "two", None)))
    clock(ports).now += ports.limits.first_check_after
    reconcile(ports)
    done = ports.jobs.get(parent.id)
    assert done is not None and done.state is JobState.DONE
    merged = json.loads(bucket(ports).get(BUCKET, "transcripts/long call.mp3.json"))
    assert [s["text"] for s in merged["segments"]] == ["one", "two", "three"]
    assert "transcripts/long call.mp3.error.json" not in bucket(ports).keys("transcripts/")


def test_a_worker_that_dies_after_the_split_leaves_the_part_jobs_to_the_reconciler(
    ports: PipelinePorts, provider: FakeProvider, tools: FakeMediaTools
) -> None:
    real_create = ports.jobs.create

    def create_only_the_upload(job: Job) -> bool:
        if job.part_of is not None:
            raise ConnectionError("the worker died here")
        return real_create(job)

    ports.jobs.create = create_only_the_upload
    bucket(ports).add(BUCKET, KEY, MP3)
    (result,) = submit_uploads([ObjectRef(bucket=BUCKET, key=KEY)], ports)
    assert result.outcome is UploadOutcome.RETRY and provider.submissions == []
    ports.jobs.create = real_create
    # The notification comes again: the split is recorded, so nothing is cut or sent twice.
    (again,) = submit_uploads([ObjectRef(bucket=BUCKET, key=KEY)], ports)
    assert again.outcome is UploadOutcome.DUPLICATE and len(tools.writes) == 3
    parent = ports.jobs.get(again.job_id or "")
    assert parent is not None and parent.state is JobState.SUBMITTED and len(parent.parts) == 3
    assert parent.next_check_at is not None
    clock(ports).now = parent.next_check_at
    reconcile(ports)  # makes the missing part jobs, due at once
    reconcile(ports)  # and submits them like any due upload
    assert [p.state for p in parts_of(ports, parent)] == [JobState.SUBMITTED] * 3
    assert len(provider.submissions) == 3


def test_the_status_shows_the_parts_and_where_each_stands(
    ports: PipelinePorts, provider: FakeProvider, tools: FakeMediaTools
) -> None:
    parent = split(ports)
    first = parts_of(ports, parent)[0]
    view = job_status(parent.id, ports.jobs)
    assert view is not None and view.media is not None and view.media_route is not None
    assert [(p.index, p.start_ms, p.end_ms, p.state) for p in view.parts] == [
        (1, 0, 50_000, JobState.SUBMITTED),
        (2, 50_000, 100_000, JobState.SUBMITTED),
        (3, 100_000, 150_000, JobState.SUBMITTED),
    ]
    assert view.parts[0].provider_task_id == first.provider_task_id
    part_view = job_status(first.id, ports.jobs)
    assert part_view is not None and part_view.part_of is not None
    assert part_view.part_of.parent_id == parent.id and part_view.part_of.count == 3


def test_the_merged_transcript_adds_up_the_parts_coverage_and_places_their_warnings(
    ports: PipelinePorts, provider: FakeProvider, tools: FakeMediaTools
) -> None:
    parent = split(ports)
    # SIS reports only each part's length: coverage on that basis, long stretches without text warned.
    pieces = [
        said((0, 50_000, "talk all through part one", None)),
        said((0, 10_000, "ten seconds then quiet", None)),
        said((0, 50_000, "talk all through part three", None)),
    ]
    for piece, ref in zip(pieces, parent.parts, strict=True):
        piece.duration_ms = ref.end_ms - ref.start_ms
    finish_all(ports, provider, parent, pieces)
    done = ports.jobs.get(parent.id)
    assert done is not None and done.state is JobState.DONE and done.coverage is not None
    assert done.coverage.basis == "audio_duration"
    assert done.coverage.covered_ms == sum(
        part.coverage.covered_ms for part in parts_of(ports, parent) if part.coverage is not None
    )
    (gap,) = done.warnings
    # Part two's silence after its first ten seconds, placed in the upload's time.
    assert gap.code == "LONG_GAP_WITHOUT_TEXT" and gap.start_ms is not None and gap.end_ms is not None
    assert 60_000 <= gap.start_ms <= 61_000 and gap.end_ms == 100_000
    assert gap.message.startswith("part 2 (from 0:00:50): ")
    merged = json.loads(bucket(ports).get(BUCKET, "transcripts/long call.mp3.json"))
    assert merged["coverage"]["covered_ms"] == done.coverage.covered_ms and len(merged["warnings"]) == 1
