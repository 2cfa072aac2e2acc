"""Real-time profiles in the pipeline: the submit worker streams the upload itself, inside the job's
state machine (the stream is an attempt; its task and delays are bound when it ends; the outputs
are written through the same finishing path), and the reconciler carries on what a dead worker left."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable, Mapping
from datetime import timedelta

import pytest

from bucketscribe.cli.admin import show_status
from bucketscribe.domain.callback_tokens import CallbackSigner
from bucketscribe.domain.job import AttemptState, JobState
from bucketscribe.domain.output_layout import OutputLayout
from bucketscribe.domain.profile import ProfileSet
from bucketscribe.domain.transcript import Transcript
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.context import Limits, PipelinePorts
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.pipeline.steps.finish import fetch_task
from bucketscribe.pipeline.steps.stream import INTERRUPTED, MAX_STREAM_RESTARTS, TOO_LONG
from bucketscribe.pipeline.submit import UploadOutcome, submit_uploads
from bucketscribe.ports.provider import (
    STREAM_CUT_AT_DEADLINE,
    CallsBack,
    ProviderError,
    SearchesTasks,
    StreamingProvider,
    TaskProvider,
    TaskStatus,
)
from bucketscribe.providers import registry
from bucketscribe.providers.dashscope.realtime import DashScopeRealtimeProvider, RealtimeStreamer
from bucketscribe.providers.registry import load_profiles, providers_used
from tests.audio import tone_wav
from tests.fakes import (
    FakeMediaTools,
    FakeProvider,
    FakeStreamingProvider,
    InMemoryJobStore,
    InMemoryStorage,
    SettableClock,
    WorkerDied,
)
from tests.profiles import profile

pytestmark = pytest.mark.unit

BUCKET = "recordings"
LIVE = {"name": "live", "prefix": "live/", "provider": "dashscope-realtime", "realtime": {"translate": "en"}}


def ports_for(
    streams: FakeStreamingProvider, batch: FakeProvider, *profiles: Mapping[str, object]
) -> PipelinePorts:
    clock = SettableClock()
    batch.clock = clock
    storage = InMemoryStorage()
    return PipelinePorts(
        storage=storage,
        media_tools=FakeMediaTools(storage),
        jobs=InMemoryJobStore(),
        providers={"dashscope-realtime": streams, "dashscope": batch},
        signer=CallbackSigner(b"unit-test-secret-0123456789"),
        layout=OutputLayout(input_prefix="incoming/", output_prefix="transcripts/"),
        profiles=ProfileSet(profiles=[profile(), *(profile(**p) for p in profiles or [LIVE])]),
        callback_base_url="https://cb.example.com/prod",
        limits=Limits(realtime_budget=timedelta(seconds=60), claim_lease=timedelta(minutes=5)),
        clock=clock,
    )


@pytest.fixture
def streams() -> FakeStreamingProvider:
    return FakeStreamingProvider()


@pytest.fixture
def batch() -> FakeProvider:
    provider = FakeProvider(max_files_per_task=100, can_search_tasks=True)
    provider.name = "dashscope"
    provider.accepts_callback_url = False
    return provider


@pytest.fixture
def ports(streams: FakeStreamingProvider, batch: FakeProvider) -> PipelinePorts:
    return ports_for(streams, batch)


def upload(ports: PipelinePorts, key: str, body: bytes) -> ObjectRef:
    ports.storage.put(BUCKET, key, body, content_type="audio/wav")
    info = ports.storage.head(BUCKET, key)
    assert info is not None
    return ObjectRef(bucket=BUCKET, key=key, etag=info.etag, size=info.size)


def fail_first_put(ports: PipelinePorts, picks: Callable[[str], bool], error: BaseException) -> None:
    """The first put of a key that ``picks`` raises ``error``; every other put goes through."""
    storage = ports.storage
    assert isinstance(storage, InMemoryStorage)
    put = storage.put
    failed: list[str] = []

    def failing_put(bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        if picks(key) and not failed:
            failed.append(key)
            raise error
        put(bucket, key, body, content_type=content_type)

    storage.put = failing_put


def later(ports: PipelinePorts, span: timedelta) -> None:
    clock = ports.clock
    assert isinstance(clock, SettableClock)
    clock.now += span


def test_a_realtime_upload_is_streamed_and_every_output_written_with_the_delays_on_its_job(
    ports: PipelinePorts, streams: FakeStreamingProvider
) -> None:
    ref = upload(ports, "incoming/live/talk.wav", tone_wav(3.0))

    (result,) = submit_uploads([ref], ports)

    assert result.outcome is UploadOutcome.DONE
    assert result.stream is not None and result.stream.first_package_ms == 401
    ((speech, profile),) = streams.streams
    assert speech.duration_ms == 3000 and len(speech.tracks) == 1 and profile.name == "live"
    job = ports.jobs.get(ref.job_id())
    assert job is not None and job.state is JobState.DONE
    (attempt,) = job.attempts
    assert (attempt.state, attempt.task_id, attempt.bound_by) == (AttemptState.ACCEPTED, "stream-1", "stream")
    assert attempt.stream is not None
    assert (attempt.stream.first_package_ms, attempt.stream.last_package_ms) == (401, 1100)
    assert attempt.stream.audio_ms == 3000
    assert job.finishings == 1
    stem = "transcripts/live/talk.wav"
    assert sorted(job.outputs) == sorted(
        f"{stem}.{s}" for s in ("json", "txt", "srt", "vtt", "en.srt", "en.vtt")
    )
    transcript = Transcript.model_validate_json(ports.storage.get(BUCKET, f"{stem}.json"))
    assert transcript.source == ref.model_copy(update={"size": ref.size})
    assert [(t.language, t.segments[0].text) for t in transcript.translations] == [("en", "translation 1.")]
    bilingual = ports.storage.get(BUCKET, f"{stem}.en.srt").decode()
    assert "stream 1 heard this." in bilingual and "translation 1." in bilingual
    assert "translation 1." not in ports.storage.get(BUCKET, f"{stem}.srt").decode()


def test_a_split_profile_streams_each_channel_of_a_stereo_call(
    streams: FakeStreamingProvider, batch: FakeProvider
) -> None:
    calls = {
        "name": "calls",
        "prefix": "calls/",
        "provider": "dashscope-realtime",
        "realtime": {"channels": "split"},
    }
    ports = ports_for(streams, batch, calls)
    ref = upload(ports, "incoming/calls/c.wav", tone_wav(2.0, channels=2))
    (result,) = submit_uploads([ref], ports)
    assert result.outcome is UploadOutcome.DONE
    ((speech, _),) = streams.streams
    assert len(speech.tracks) == 2 and speech.source_channels == 2


def test_a_stream_the_service_refuses_fails_the_job_with_its_code(
    ports: PipelinePorts, streams: FakeStreamingProvider
) -> None:
    streams.fail_with = ProviderError(
        "InvalidParameter", "Invalid parameter source_language", retryable=False
    )
    ref = upload(ports, "incoming/live/talk.wav", tone_wav(1.0))

    (result,) = submit_uploads([ref], ports)

    assert result.outcome is UploadOutcome.REJECTED
    job = ports.jobs.get(ref.job_id())
    assert job is not None and job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "InvalidParameter"
    assert job.attempts[-1].state is AttemptState.REFUSED
    report = json.loads(ports.storage.get(BUCKET, "transcripts/live/talk.wav.error.json"))
    assert "source_language" in json.dumps(report)


def test_a_stream_broken_for_a_passing_reason_is_streamed_again_later(
    ports: PipelinePorts, streams: FakeStreamingProvider
) -> None:
    streams.fail_with = ProviderError(
        "CLIENT_ERROR", "the service closed the stream after 23 s", retryable=True
    )
    ref = upload(ports, "incoming/live/talk.wav", tone_wav(1.0))

    (result,) = submit_uploads([ref], ports)

    assert result.outcome is UploadOutcome.DEFERRED
    job = ports.jobs.get(ref.job_id())
    assert job is not None and job.state is JobState.ACCEPTED
    assert job.attempts[-1].state is AttemptState.REFUSED
    later(ports, ports.limits.submit_retry_after)
    report = reconcile(ports)
    assert report.finished == 1
    job = ports.jobs.get(ref.job_id())
    assert job is not None and job.state is JobState.DONE and len(streams.streams) == 2


def test_a_worker_dying_mid_stream_is_streamed_again_once_its_lease_ran_out_the_residual_cost(
    ports: PipelinePorts, streams: FakeStreamingProvider
) -> None:
    streams.die = 1
    ref = upload(ports, "incoming/live/talk.wav", tone_wav(1.0))
    with pytest.raises(WorkerDied):
        submit_uploads([ref], ports)
    job = ports.jobs.get(ref.job_id())
    assert job is not None and job.state is JobState.SUBMITTING
    assert job.attempts[-1].state is AttemptState.IN_FLIGHT

    # While the dead worker's lease holds, nobody touches the job.
    later(ports, timedelta(minutes=1))
    reconcile(ports)
    assert len(streams.streams) == 1
    # Then nothing can be found for a stream: abandoned at once, streamed again (paid twice).
    later(ports, ports.limits.claim_lease)
    report = reconcile(ports)
    assert (report.abandoned, report.finished) == (1, 1)
    # The second stream's delays go to the metrics from the reconciler's run.
    assert [stream.first_package_ms for stream in report.streams] == [402]
    job = ports.jobs.get(ref.job_id())
    assert job is not None and job.state is JobState.DONE
    assert [a.state for a in job.attempts] == [AttemptState.ABANDONED, AttemptState.ACCEPTED]
    assert len(streams.streams) == 2


def test_streams_cut_short_again_and_again_stop_being_paid_for(
    ports: PipelinePorts, streams: FakeStreamingProvider
) -> None:
    streams.die = MAX_STREAM_RESTARTS
    ref = upload(ports, "incoming/live/talk.wav", tone_wav(1.0))
    with pytest.raises(WorkerDied):
        submit_uploads([ref], ports)
    for _ in range(MAX_STREAM_RESTARTS):
        later(ports, ports.limits.claim_lease + timedelta(seconds=1))
        try:
            reconcile(ports)
        except WorkerDied:
            continue
    later(ports, ports.limits.claim_lease + timedelta(seconds=1))
    reconcile(ports)
    job = ports.jobs.get(ref.job_id())
    assert job is not None and job.state is JobState.FAILED
    assert job.error is not None and job.error.code == INTERRUPTED
    assert len(streams.streams) == MAX_STREAM_RESTARTS
    assert ports.storage.head(BUCKET, "transcripts/live/talk.wav.error.json") is not None


def test_a_worker_dying_after_the_stream_before_the_outputs_leaves_a_task_the_reconciler_streams_again(
    ports: PipelinePorts, streams: FakeStreamingProvider
) -> None:
    ref = upload(ports, "incoming/live/talk.wav", tone_wav(1.0))
    fail_first_put(ports, lambda key: key.startswith("transcripts/"), WorkerDied())
    with pytest.raises(WorkerDied):
        submit_uploads([ref], ports)
    job = ports.jobs.get(ref.job_id())
    assert job is not None and job.state is JobState.SUBMITTED and job.provider_task_id == "stream-1"
    assert job.attempts[0].stream is not None

    # The finishing lease runs out; the provider has nothing for the stream's task: it goes again.
    later(ports, ports.limits.finish_lease + timedelta(seconds=1))
    reconcile(ports)
    job = ports.jobs.get(ref.job_id())
    assert job is not None and job.state is JobState.ACCEPTED
    later(ports, timedelta(seconds=1))
    assert reconcile(ports).finished == 1
    job = ports.jobs.get(ref.job_id())
    assert job is not None and job.state is JobState.DONE
    assert [a.state for a in job.attempts] == [AttemptState.EXPIRED, AttemptState.ACCEPTED]
    assert len(streams.streams) == 2


def test_the_reconciler_finds_that_a_streams_task_keeps_nothing(ports: PipelinePorts) -> None:
    adapter = DashScopeRealtimeProvider(RealtimeStreamer(api_key="sk-unused"))
    ports.providers = {"dashscope-realtime": adapter}
    result = fetch_task(ports, "dashscope-realtime", "stream-1")
    assert result.status is TaskStatus.NOT_FOUND
    assert result.error is not None and result.error.code == "STREAM_RESULT_LOST"
    assert isinstance(adapter, StreamingProvider)
    assert not isinstance(adapter, TaskProvider | SearchesTasks | CallsBack)


def test_an_upload_too_long_for_the_function_is_refused_for_real_time_with_the_reason(
    ports: PipelinePorts, streams: FakeStreamingProvider
) -> None:
    # The budget is 60 s; 50 s of audio plus the stream's overhead does not fit.
    ref = upload(ports, "incoming/live/long.wav", tone_wav(50.0, rate=8000))

    (result,) = submit_uploads([ref], ports)

    assert result.outcome is UploadOutcome.REJECTED
    job = ports.jobs.get(ref.job_id())
    assert job is not None and job.error is not None and job.error.code == TOO_LONG
    assert "longer_uploads: batch" in job.error.message
    assert streams.streams == [] and job.attempts == []


def test_an_upload_too_long_goes_to_file_transcription_when_the_profile_says_so(
    streams: FakeStreamingProvider, batch: FakeProvider
) -> None:
    ports = ports_for(streams, batch, {**LIVE, "realtime": {"longer_uploads": "batch"}})
    ref = upload(ports, "incoming/live/long.wav", tone_wav(50.0, rate=8000))

    (result,) = submit_uploads([ref], ports)

    assert result.outcome is UploadOutcome.SUBMITTED
    assert streams.streams == []
    ((items, profile),) = batch.submissions
    assert [item.job_id for item in items] == [ref.job_id()] and profile.provider == "dashscope"
    job = ports.jobs.get(ref.job_id())
    assert job is not None and (job.provider, job.model, job.profile) == (
        "dashscope",
        "paraformer-v2",
        "live",
    )
    assert job.state is JobState.SUBMITTED and job.provider_task_id == "task-1"


def test_real_time_profiles_are_checked_when_the_settings_load() -> None:
    with pytest.raises(ValueError, match="does not go with provider"):
        load_profiles([{"name": "x", "provider": "sis", "mode": "realtime"}])
    with pytest.raises(ValueError, match="does not recognise 'xx'"):
        load_profiles([{**LIVE, "realtime": {"source_language": "xx"}}])
    with pytest.raises(ValueError, match="does not translate"):
        load_profiles([{**LIVE, "realtime": {"model": "paraformer-realtime-v2", "translate": "en"}}])
    live = load_profiles([LIVE])
    (profile_,) = live.profiles
    assert (
        profile_.mode,
        registry.plugin("dashscope-realtime").model_name(profile_),
        providers_used(live),
    ) == (
        "realtime",
        "gummy-realtime-v1",
        {"dashscope-realtime"},
    )
    routed = load_profiles([{**LIVE, "realtime": {"longer_uploads": "batch"}}])
    assert providers_used(routed) == {"dashscope-realtime", "dashscope"}
    (split,) = load_profiles([{**LIVE, "realtime": {"channels": "split"}}]).profiles
    assert registry.plugin("dashscope-realtime").channels(split)[0] == 2


def test_bucketscribe_status_shows_the_streams_delays(ports: PipelinePorts) -> None:
    ref = upload(ports, "incoming/live/talk.wav", tone_wav(1.0))
    submit_uploads([ref], ports)
    shown = io.StringIO()
    args = argparse.Namespace(target=ref.job_id(), json=False, scheme="s3")
    assert show_status(args, ports.jobs, shown) == 0
    assert "  attempt 1: ACCEPTED task stream-1 (upload)" in shown.getvalue()
    assert (
        "    stream: first package 401 ms, last package 1100 ms, 1.0 s of audio in 0.9 s" in shown.getvalue()
    )
    as_json = io.StringIO()
    show_status(argparse.Namespace(target=ref.job_id(), json=True, scheme="s3"), ports.jobs, as_json)
    (attempt,) = json.loads(as_json.getvalue())["latest"]["attempts"]
    assert attempt["stream"]["first_package_ms"] == 401


def test_without_a_decoder_an_upload_that_needs_one_is_refused_with_the_reason(
    ports: PipelinePorts, streams: FakeStreamingProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pyav(source: object, *, split_channels: bool = False) -> None:
        raise ImportError("No module named 'av'")

    monkeypatch.setattr("tests.fakes.decode_pcm16", no_pyav)
    ref = upload(ports, "incoming/live/talk.wav", tone_wav(1.0, rate=8000))

    (result,) = submit_uploads([ref], ports)

    assert result.outcome is UploadOutcome.REJECTED and streams.streams == []
    job = ports.jobs.get(ref.job_id())
    assert job is not None and job.error is not None and job.error.code == "UNSUPPORTED_MEDIA"
    assert "pcm_s16le in wav, 8000 Hz, mono" in job.error.message


def test_a_stream_that_would_outlive_the_run_is_not_started_and_a_later_run_streams_it_within_its_time(
    ports: PipelinePorts, streams: FakeStreamingProvider
) -> None:
    # 30 s of audio needs 30 s + the stream's overhead: more than the 40 s this run has left.
    ref = upload(ports, "incoming/live/talk.wav", tone_wav(30.0, rate=8000))

    (result,) = submit_uploads([ref], ports, time_left=lambda: timedelta(seconds=40))

    assert result.outcome is UploadOutcome.DEFERRED and streams.streams == []
    job = ports.jobs.get(ref.job_id())
    assert job is not None and job.state is JobState.ACCEPTED and job.attempts == []
    assert job.claimed_by is None
    later(ports, timedelta(minutes=5))
    assert reconcile(ports, time_left=lambda: timedelta(seconds=50)).finished == 1
    # Cut at what the run had (50 s), below the mode's budget (60 s here).
    assert streams.given == [timedelta(seconds=50)]
    job = ports.jobs.get(ref.job_id())
    assert job is not None and job.state is JobState.DONE and len(job.attempts) == 1


def test_streams_cut_at_their_deadline_count_as_interrupted_and_stop_being_paid_for(
    ports: PipelinePorts, streams: FakeStreamingProvider
) -> None:
    cut = ProviderError(STREAM_CUT_AT_DEADLINE, "the stream had not ended in time", retryable=True)
    ref = upload(ports, "incoming/live/talk.wav", tone_wav(1.0))
    streams.fail_with = cut

    (result,) = submit_uploads([ref], ports)

    assert result.outcome is UploadOutcome.DEFERRED
    for _ in range(MAX_STREAM_RESTARTS):
        later(ports, timedelta(hours=1))
        streams.fail_with = cut
        reconcile(ports)
    job = ports.jobs.get(ref.job_id())
    assert job is not None and job.state is JobState.FAILED
    assert job.error is not None and job.error.code == INTERRUPTED
    assert len(streams.streams) == MAX_STREAM_RESTARTS


def test_an_error_recording_a_refused_stream_is_retried_not_raised_and_the_redelivery_finishes_it(
    ports: PipelinePorts, streams: FakeStreamingProvider
) -> None:
    ref = upload(ports, "incoming/live/talk.wav", tone_wav(1.0))
    report = "transcripts/live/talk.wav.error.json"
    fail_first_put(ports, lambda key: key == report, ConnectionError("storage unavailable"))
    storage = ports.storage
    streams.fail_with = ProviderError("InvalidParameter", "source_language xx", retryable=False)

    (result,) = submit_uploads([ref], ports)

    assert result.outcome is UploadOutcome.RETRY and "storage unavailable" in (result.reason or "")
    assert storage.head(BUCKET, report) is None
    (again,) = submit_uploads([ref], ports)
    assert again.outcome is UploadOutcome.DUPLICATE
    assert storage.head(BUCKET, report) is not None
    assert len(streams.streams) == 1


def test_an_upload_handed_to_file_transcription_is_routed_for_it_not_sent_as_real_time_took_it(
    streams: FakeStreamingProvider, batch: FakeProvider
) -> None:
    ports = ports_for(streams, batch, {**LIVE, "realtime": {"longer_uploads": "batch"}})
    batch.max_bytes = 100_000  # the file service takes less than this upload, and nothing converts here
    assert isinstance(ports.media_tools, FakeMediaTools)
    ports.media_tools.converts = False
    ref = upload(ports, "incoming/live/long.wav", tone_wav(50.0, rate=8000))

    (result,) = submit_uploads([ref], ports)

    assert result.outcome is UploadOutcome.REJECTED
    assert streams.streams == [] and batch.submissions == []
    job = ports.jobs.get(ref.job_id())
    assert job is not None and job.provider == "dashscope" and job.error is not None
    assert job.error.code == "FILE_TOO_LARGE" and "dashscope takes at most" in job.error.message


def test_uploads_of_one_profile_streamed_or_handed_to_file_transcription_are_retried_each_their_way(
    streams: FakeStreamingProvider, batch: FakeProvider
) -> None:
    ports = ports_for(streams, batch, {**LIVE, "realtime": {"longer_uploads": "batch"}})
    # Both refused for now: the long one by file transcription (it was handed there), the short
    # one's stream by the real-time service.
    batch.submit_error = ProviderError("Throttling", "busy", retryable=True)
    long = upload(ports, "incoming/live/long.wav", tone_wav(50.0, rate=8000))
    assert submit_uploads([long], ports)[0].outcome is UploadOutcome.DEFERRED
    later(ports, timedelta(seconds=1))
    streams.fail_with = ProviderError("CLIENT_ERROR", "the stream was closed", retryable=True)
    short = upload(ports, "incoming/live/short.wav", tone_wav(1.0))
    assert submit_uploads([short], ports)[0].outcome is UploadOutcome.DEFERRED
    batch.submit_error = None

    later(ports, timedelta(hours=1))
    reconcile(ports)  # both due in one run, of one profile

    ((items, profile),) = batch.submissions
    assert [item.job_id for item in items] == [long.job_id()] and profile.provider == "dashscope"
    assert len(streams.streams) == 2  # the short one streamed again, never sent as a file
    job = ports.jobs.get(short.job_id())
    assert job is not None and job.state is JobState.DONE and job.provider == "dashscope-realtime"
