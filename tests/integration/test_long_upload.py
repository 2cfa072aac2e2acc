"""A 6-hour recording under an SIS profile, end to end through the use cases: cut at a quiet
place into two parts that SIS takes (≤ 5 h, ≤ 300 MB), each submitted as its own job, merged into
one transcript with the parts' offsets. Real media (PyAV on a WAV streamed to disk), fake ports."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from bucketscribe.domain.callback_tokens import CallbackSigner
from bucketscribe.domain.job import Job, JobState
from bucketscribe.domain.output_layout import OutputLayout
from bucketscribe.domain.profile import ProfileSet
from bucketscribe.domain.transcript import Segment, Transcript
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.media.bucket import BucketMedia
from bucketscribe.media.transcode import probe
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.pipeline.submit import UploadOutcome, submit_uploads
from bucketscribe.providers.sis.adapter import SIS_MAX_BYTES, SIS_MAX_DURATION_MS, SisCredentials, SisProvider
from bucketscribe.providers.sis.options import SisOptions
from tests.audio import write_wav
from tests.fakes import DiskStorage, FakeProvider, InMemoryJobStore, SettableClock
from tests.profiles import profile

pytestmark = pytest.mark.integration

BUCKET = "recordings"
KEY = "incoming/calls/all day.wav"
HOURS = 6
# Speech stand-ins: 20 s of tone each minute, except the five minutes before the first part's
# limit (4.85 h = 17 460 s), which are tone throughout but for one 3-second pause at 17 300 s.
PAUSE_S = (17_300, 17_303)


def tones() -> list[tuple[float, float]]:
    minutes = [(m * 60 + 10, m * 60 + 30) for m in range(HOURS * 60) if not 16_980 <= m * 60 < 17_640]
    return sorted([*minutes, (17_000, PAUSE_S[0]), (PAUSE_S[1], 17_600)])


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)  # a gigabyte of audio: not kept for pytest's history


@pytest.fixture
def provider() -> FakeProvider:
    provider = FakeProvider()
    sis = SisProvider(SisCredentials(ak="ak", sk=SecretStr("sk"), project_id="p"))
    provider.media_requirements = sis.media_requirements
    return provider


@pytest.fixture
def ports(folder: Path, provider: FakeProvider) -> PipelinePorts:
    storage = DiskStorage(folder / "bucket")
    clock = SettableClock()
    provider.clock = clock
    return PipelinePorts(
        storage=storage,
        jobs=InMemoryJobStore(),
        providers={"sis": provider},
        signer=CallbackSigner(b"integration-test-secret-0123456789"),
        layout=OutputLayout(input_prefix="incoming/", output_prefix="transcripts/"),
        profiles=ProfileSet(
            profiles=[
                profile(),
                profile(name="calls", prefix="calls/", sis=SisOptions(property="chinese_8k_general")),
            ]
        ),
        callback_base_url="https://cb.example.com/prod",
        media_tools=BucketMedia(storage, workdir=folder),
        clock=clock,
    )


def test_six_hours_under_sis_are_two_parts_and_one_transcript_with_monotonic_times(
    ports: PipelinePorts, provider: FakeProvider, folder: Path
) -> None:
    upload = folder / "bucket" / BUCKET / KEY
    upload.parent.mkdir(parents=True)
    write_wav(upload, seconds=HOURS * 3600, rate=8000, tones=tones())  # 346 MB
    (result,) = submit_uploads([ObjectRef(bucket=BUCKET, key=KEY)], ports)
    assert result.outcome is UploadOutcome.SUBMITTED, result.reason
    parent = ports.jobs.get(result.job_id or "")
    assert parent is not None and parent.media is not None and parent.media.duration_ms == HOURS * 3_600_000

    # Two parts, cut inside the pause, each within what SIS takes.
    first, second = parent.parts
    assert PAUSE_S[0] * 1000 + 250 <= first.end_ms <= PAUSE_S[1] * 1000 - 250
    assert (first.start_ms, second.start_ms, second.end_ms) == (0, first.end_ms, HOURS * 3_600_000)
    for part in parent.parts:
        info = probe(folder / "bucket" / BUCKET / part.key)
        assert (info.codec, info.sample_rate, info.channels) == ("pcm_s16le", 8000, 1)
        assert abs(info.duration_ms - (part.end_ms - part.start_ms)) <= 1
        assert info.duration_ms <= SIS_MAX_DURATION_MS
        assert (folder / "bucket" / BUCKET / part.key).stat().st_size <= SIS_MAX_BYTES
    jobs = [ports.jobs.get(part.job_id) for part in parent.parts]
    assert all(job is not None and job.state is JobState.SUBMITTED for job in jobs)
    assert len(provider.submissions) == 2

    # Each part's provider hears its own stretch: segments in the part's time.
    def heard(part_start_ms: int, part_end_ms: int) -> Transcript:
        inside = [(a, b) for a, b in tones() if part_start_ms <= a * 1000 < part_end_ms]
        return Transcript(
            provider="sis",
            segments=[
                Segment(
                    start_ms=round(a * 1000) - part_start_ms,
                    end_ms=round(b * 1000) - part_start_ms,
                    text=f"t{a:g}",
                )
                for a, b in inside
            ],
        )

    for part, job in zip(parent.parts, jobs, strict=True):
        assert isinstance(job, Job) and job.provider_task_id is not None
        provider.finish(job.provider_task_id, heard(part.start_ms, part.end_ms))
    assert isinstance(ports.clock, SettableClock)
    ports.clock.now += timedelta(minutes=10)
    reconcile(ports)

    done = ports.jobs.get(parent.id)
    assert done is not None and done.state is JobState.DONE
    merged = json.loads((folder / "bucket" / BUCKET / "transcripts/calls/all day.wav.json").read_text())
    starts = [segment["start_ms"] for segment in merged["segments"]]
    assert starts == sorted(starts) and len(starts) == len(tones())
    # Every segment back where its tone is in the recording.
    assert [(s["start_ms"], s["end_ms"]) for s in merged["segments"]] == [
        (round(a * 1000), round(b * 1000)) for a, b in tones()
    ]
    assert merged["duration_ms"] == HOURS * 3_600_000
