import json
from collections.abc import Sequence
from datetime import timedelta

import pytest

from bucketscribe.domain.job import AttemptState, Job, JobState
from bucketscribe.domain.media_routing import MediaProbe, Route
from bucketscribe.domain.profile import Profile
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.pipeline.submit import UploadOutcome, submit_uploads
from bucketscribe.ports.provider import ProviderError, SubmitItem, SubmitReceipt
from bucketscribe.ports.storage import ObjectInfo
from tests.audio import tone_wav
from tests.fakes import FakeMediaTools, FakePorts, FakeProvider, claim_from_callback_url, known

pytestmark = pytest.mark.unit

BUCKET = "recordings"
BUSY = ProviderError("SIS.0312", "too many concurrent jobs", retryable=True)
LOST = ProviderError("SIS.UNREACHABLE", "Read timed out", retryable=True, maybe_done=True)


def upload(ports: FakePorts, key: str, body: bytes) -> ObjectRef:
    ports.storage.add(BUCKET, key, body)
    return ObjectRef(bucket=BUCKET, key=key)


def test_a_valid_upload_becomes_one_submitted_job_with_an_attempt_bound_callback(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ref = upload(ports, "incoming/calls/2026-11-20 agent+42.wav", tone_wav(1))
    (result,) = submit_uploads([ref], ports)
    assert result.outcome is UploadOutcome.SUBMITTED
    job = ports.jobs.get(result.job_id)
    assert job.state is JobState.SUBMITTED and job.provider_task_id == "task-1"
    assert job.profile == "calls" and job.source.etag
    assert [(a.number, a.state, a.bound_by) for a in job.attempts] == [(1, AttemptState.ACCEPTED, "answer")]
    ((items, profile),) = provider.submissions
    assert profile.name == "calls"
    assert items[0].media_url.startswith("https://storage.invalid/recordings/incoming/calls/")
    assert items[0].callback_url.startswith(
        f"https://cb.example.com/prod/callbacks/sis/{job.id}?attempt=1&exp="
    )
    job_id, claim = claim_from_callback_url(items[0].callback_url)
    assert job_id == job.id and ports.signer.verify(claim, ports.clock())


def test_the_same_upload_three_times_submits_once(ports: FakePorts, provider: FakeProvider) -> None:
    ref = upload(ports, "incoming/a.wav", tone_wav(1))
    outcomes = [submit_uploads([ref], ports)[0].outcome for _ in range(3)]
    assert outcomes == [UploadOutcome.SUBMITTED, UploadOutcome.DUPLICATE, UploadOutcome.DUPLICATE]
    assert len(provider.submissions) == 1


def test_one_batch_holding_the_same_upload_twice_submits_it_once(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ref = upload(ports, "incoming/twice.wav", tone_wav(1))
    results = submit_uploads([ref, ref], ports)
    assert [r.outcome for r in results] == [UploadOutcome.SUBMITTED, UploadOutcome.DUPLICATE]
    assert len(provider.submissions) == 1


def test_a_reupload_with_new_content_is_a_new_job(ports: FakePorts, provider: FakeProvider) -> None:
    first = submit_uploads([upload(ports, "incoming/a.wav", tone_wav(1))], ports)[0]
    second = submit_uploads([upload(ports, "incoming/a.wav", tone_wav(2))], ports)[0]
    assert second.outcome is UploadOutcome.SUBMITTED and second.job_id != first.job_id
    assert len(provider.submissions) == 2


def test_the_presigned_media_url_pins_the_version_the_job_recorded(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ref = upload(ports, "incoming/v.wav", tone_wav(1))
    real_head = ports.storage.head

    def versioned_head(bucket: str, key: str) -> ObjectInfo | None:
        info = real_head(bucket, key)
        return info.model_copy(update={"version_id": "v-3HL4kqt"}) if info else None

    ports.storage.head = versioned_head
    (result,) = submit_uploads([ref], ports)
    ((items, _),) = provider.submissions
    assert "versionId=v-3HL4kqt" in items[0].media_url
    assert ports.jobs.get(result.job_id).source.version_id == "v-3HL4kqt"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("transcripts/a.wav.json", "output prefix"),
        ("transcripts/calls/a.wav", "output prefix"),
        ("elsewhere/a.wav", "outside the input prefix"),
        ("incoming/notes.txt", "extension"),
    ],
)
def test_what_is_not_ours_is_skipped_with_a_reason_and_no_job(
    ports: FakePorts, provider: FakeProvider, key: str, reason: str
) -> None:
    (result,) = submit_uploads([upload(ports, key, tone_wav(1))], ports)
    assert result.outcome is UploadOutcome.SKIPPED and reason in result.reason
    assert ports.jobs.jobs == {} and provider.submissions == []


def test_a_deleted_object_is_skipped(ports: FakePorts, provider: FakeProvider) -> None:
    (result,) = submit_uploads([ObjectRef(bucket=BUCKET, key="incoming/gone.wav")], ports)
    assert result.outcome is UploadOutcome.SKIPPED and "no longer exists" in result.reason


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        (b"", "EMPTY_FILE", "empty"),
        (b"this is just text, renamed to wav\n" * 10, "NOT_MEDIA", "look like text"),
        (b"\x00\x01\x02\x03" * 100, "NOT_MEDIA", "unknown binary"),
        (tone_wav(40), "FILE_TOO_LARGE", "limit is 1 MB"),
        (tone_wav(61, rate=8000), "AUDIO_TOO_LONG", "limit is"),
    ],
)
def test_bad_input_is_rejected_with_an_error_file_and_a_failed_job(
    ports: FakePorts, provider: FakeProvider, body: bytes, code: str, words: str
) -> None:
    key = "incoming/sub dir/bad.wav"
    (result,) = submit_uploads([upload(ports, key, body)], ports)
    assert result.outcome is UploadOutcome.REJECTED
    job = ports.jobs.get(result.job_id)
    assert job.state is JobState.FAILED and job.error.code == code and words in job.error.message
    report = json.loads(ports.storage.get(BUCKET, "transcripts/sub dir/bad.wav.error.json"))
    assert report["source"]["key"] == key and report["error"]["code"] == code
    assert provider.submissions == []
    # The original upload is untouched: nothing is lost.
    assert ports.storage.get(BUCKET, key) == body


def test_a_key_too_long_for_its_outputs_is_refused_up_front_with_a_report_under_a_short_key(
    ports: FakePorts, provider: FakeProvider
) -> None:
    key = "incoming/" + "d" * 995 + ".wav"  # fits S3's 1 024 bytes; "transcripts/…speech.ogg" would not
    (result,) = submit_uploads([upload(ports, key, tone_wav(1))], ports)
    assert result.outcome is UploadOutcome.REJECTED and "1 024-byte key limit" in result.reason
    job = ports.jobs.get(result.job_id)
    assert job.error.code == "KEY_TOO_LONG" and provider.submissions == []
    report = json.loads(ports.storage.get(BUCKET, f"transcripts/_errors/{job.id}.error.json"))
    assert report["source"]["key"] == key


def test_a_busy_provider_is_retried_later_by_the_reconciler_not_the_queue(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ref = upload(ports, "incoming/a.wav", tone_wav(1))
    provider.submit_error = BUSY
    (result,) = submit_uploads([ref], ports)
    # The job is recorded and owns its retries: the notification is done with.
    assert result.outcome is UploadOutcome.DEFERRED
    job = ports.jobs.get(result.job_id)
    assert job.state is JobState.ACCEPTED and job.error.code == "SIS.0312"
    assert job.next_check_at == ports.clock.now + ports.limits.submit_retry_after
    provider.submit_error = None
    ports.clock.now = job.next_check_at
    assert reconcile(ports).submitted == 1
    again = ports.jobs.get(result.job_id)
    assert again.state is JobState.SUBMITTED
    assert [a.state for a in again.attempts] == [AttemptState.REFUSED, AttemptState.ACCEPTED]
    assert again.attempts[1].reason == "retry after SIS.0312"


def test_refusals_back_off_and_fail_with_the_last_reason_after_the_last_attempt(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ref = upload(ports, "incoming/never.wav", tone_wav(1))
    provider.submit_error = BUSY
    (result,) = submit_uploads([ref], ports)
    waits = []
    while (job := ports.jobs.get(result.job_id)).state is JobState.ACCEPTED:
        waits.append(known(job.next_check_at) - ports.clock.now)
        ports.clock.now = known(job.next_check_at)
        reconcile(ports)
    assert len(job.attempts) == ports.limits.max_submit_attempts
    assert waits == sorted(waits) and waits[0] == ports.limits.submit_retry_after
    assert job.state is JobState.FAILED and job.error.code == "NEVER_SUBMITTED"
    assert "too many concurrent jobs" in job.error.message and "bucketscribe redrive" in job.error.message
    assert json.loads(ports.storage.get(BUCKET, "transcripts/never.wav.error.json"))["error"]["code"] == (
        "NEVER_SUBMITTED"
    )


def test_a_lost_answer_is_never_resubmitted_blindly(ports: FakePorts, provider: FakeProvider) -> None:
    ref = upload(ports, "incoming/lost.wav", tone_wav(1))
    provider.lose_answer = LOST  # the provider creates the job, then the answer is lost
    (result,) = submit_uploads([ref], ports)
    assert result.outcome is UploadOutcome.DEFERRED
    job = ports.jobs.get(result.job_id)
    assert job.state is JobState.SUBMITTING and job.current_attempt.state is AttemptState.UNCERTAIN
    provider.lose_answer = None
    # The queue redelivers the notification (and again): nothing is sent twice.
    for _ in range(2):
        assert submit_uploads([ref], ports)[0].outcome is UploadOutcome.DUPLICATE
    assert provider.tasks_for(job.id) == ["task-1"]


def test_a_failed_write_after_the_provider_accepted_is_retried_not_the_submission(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ref = upload(ports, "incoming/outage.wav", tone_wav(1))
    real_save = ports.jobs.save
    # The job is created with its attempt's intent (no save); then the answer's first two writes fail.
    failures = iter([True, True])

    def flaky_save(job: Job) -> bool:
        if next(failures, False):
            raise ConnectionError("job store unavailable")
        return real_save(job)

    ports.jobs.save = flaky_save
    import bucketscribe.pipeline.steps.job_writes as job_writes

    sleeps: list[float] = []
    defaults = known(job_writes.with_store_retries.__kwdefaults__)
    original = defaults["sleep"]
    defaults["sleep"] = sleeps.append
    try:
        (result,) = submit_uploads([ref], ports)
    finally:
        defaults["sleep"] = original
    assert result.outcome is UploadOutcome.SUBMITTED and len(sleeps) == 2
    assert ports.jobs.get(result.job_id).state is JobState.SUBMITTED
    assert len(provider.submissions) == 1


def test_an_unexpected_error_in_the_provider_call_is_treated_as_ambiguous(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ref = upload(ports, "incoming/boom.wav", tone_wav(1))

    def explode(items: Sequence[SubmitItem], profile: Profile) -> list[SubmitReceipt]:
        raise RuntimeError("bug in the SDK after sending")

    provider.submit = explode
    (result,) = submit_uploads([ref], ports)
    assert result.outcome is UploadOutcome.DEFERRED
    (job,) = ports.jobs.jobs.values()
    assert job.state is JobState.SUBMITTING and job.current_attempt.state is AttemptState.UNCERTAIN
    assert "RuntimeError" in job.current_attempt.error.message


def test_a_permanent_provider_error_fails_the_job_with_the_providers_message(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ref = upload(ports, "incoming/a.wav", tone_wav(1))
    provider.submit_error = ProviderError("SIS.0032", "'property' is invalid", retryable=False)
    (result,) = submit_uploads([ref], ports)
    assert result.outcome is UploadOutcome.REJECTED
    report = json.loads(ports.storage.get(BUCKET, "transcripts/a.wav.error.json"))
    assert report["error"] == {"code": "SIS.0032", "message": "'property' is invalid", "retryable": False}


def test_one_bad_upload_does_not_stop_the_others(ports: FakePorts, provider: FakeProvider) -> None:
    refs = [
        upload(ports, "incoming/empty.wav", b""),
        upload(ports, "incoming/good.wav", tone_wav(1)),
        upload(ports, "incoming/readme.md", b"# hi"),
    ]
    outcomes = [r.outcome for r in submit_uploads(refs, ports)]
    assert outcomes == [UploadOutcome.REJECTED, UploadOutcome.SUBMITTED, UploadOutcome.SKIPPED]


def test_results_follow_the_order_of_the_uploads_even_for_the_same_key_in_two_buckets(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ports.storage.add("other-bucket", "incoming/same.wav", b"")
    refs = [
        upload(ports, "incoming/same.wav", tone_wav(1)),
        ObjectRef(bucket="other-bucket", key="incoming/same.wav"),
    ]
    results = submit_uploads(refs, ports)
    assert [(r.source.bucket, r.outcome) for r in results] == [
        (BUCKET, UploadOutcome.SUBMITTED),
        ("other-bucket", UploadOutcome.REJECTED),
    ]


MP4_HEAD = b"\x00\x00\x00\x20ftypisom" + b"\x00" * 200
AAC_VIDEO = MediaProbe(
    container="mp4",
    codec="aac",
    channels=1,
    sample_rate=16000,
    duration_ms=6400,
    size_bytes=0,
    has_video=True,
)


def test_a_video_is_sent_as_its_audio_copied_into_m4a_named_for_its_revision(
    ports: FakePorts, provider: FakeProvider
) -> None:
    tools = ports.media_tools = FakeMediaTools(ports.storage)
    tools.probes["incoming/demo.mp4"] = AAC_VIDEO
    (result,) = submit_uploads([upload(ports, "incoming/demo.mp4", MP4_HEAD)], ports)
    assert result.outcome is UploadOutcome.SUBMITTED
    track = f"transcripts/demo.mp4.{known(result.job_id)[:12]}.speech.m4a"
    ((source, dest, target, _, _),) = tools.writes
    assert (source, dest, target.codec) == ("incoming/demo.mp4", track, None)  # copied, not re-encoded
    job = ports.jobs.get(result.job_id)
    assert job.media_key == track and job.media_route.route is Route.REMUX
    assert job.media.codec == "aac" and job.media.has_video
    ((items, _),) = provider.submissions
    assert items[0].media_url.startswith(f"https://storage.invalid/recordings/{track}")


def test_a_supported_audio_file_is_sent_as_it_is_and_its_probe_is_kept_on_the_job(
    ports: FakePorts, provider: FakeProvider
) -> None:
    tools = ports.media_tools = FakeMediaTools(ports.storage)
    (result,) = submit_uploads([upload(ports, "incoming/a.wav", tone_wav(1))], ports)
    assert tools.writes == []
    assert tools.probed == []  # a WAV's header says all routing asks: no decoder opened
    job = ports.jobs.get(result.job_id)
    assert job.state is JobState.SUBMITTED and job.media_key is None
    assert job.media_route.route is Route.PASS_THROUGH
    assert (job.media.codec, job.media.sample_rate, job.media.duration_ms) == ("pcm_s16le", 16000, 1000)
    assert job.media.read_by == "header"
    assert "incoming/a.wav" in provider.submissions[0][0][0].media_url


def test_without_pyav_the_first_bytes_decide_and_what_the_provider_cannot_take_is_refused(
    ports: FakePorts, provider: FakeProvider
) -> None:
    assert ports.media_tools is None
    provider.sample_rate = 16000
    (ok,) = submit_uploads([upload(ports, "incoming/ok.wav", tone_wav(1))], ports)
    assert ports.jobs.get(ok.job_id).media.read_by == "header"
    (refused,) = submit_uploads([upload(ports, "incoming/8k.wav", tone_wav(1, rate=8000))], ports)
    assert refused.outcome is UploadOutcome.REJECTED
    job = ports.jobs.get(refused.job_id)
    assert job.error.code == "UNSUPPORTED_MEDIA"
    assert "needs 16000 Hz" in job.error.message and "PyAV is not installed" in job.error.message
    assert len(provider.submissions) == 1


def test_a_video_without_audio_is_rejected_with_the_reason(ports: FakePorts, provider: FakeProvider) -> None:
    tools = ports.media_tools = FakeMediaTools(ports.storage)
    tools.fail = "the file has no audio stream"
    (result,) = submit_uploads([upload(ports, "incoming/silent.mp4", MP4_HEAD)], ports)
    assert result.outcome is UploadOutcome.REJECTED
    assert ports.jobs.get(result.job_id).error.code == "NO_AUDIO"
    assert "no audio stream" in result.reason and provider.submissions == []


def test_a_duplicate_event_while_another_worker_submits_is_left_to_it_and_then_to_the_reconciler(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ref = upload(ports, "incoming/race.wav", tone_wav(1))
    provider.submit_error = BUSY
    (first,) = submit_uploads([ref], ports)  # leaves the job ACCEPTED, due for a retry
    provider.submit_error = None
    job = ports.jobs.get(first.job_id)
    # Another worker claims it (it is submitting right now) ...
    held = job.claim(ports.clock(), until=ports.clock() + timedelta(minutes=1), owner="another-worker")
    assert ports.jobs.save(held)
    (result,) = submit_uploads([ref], ports)
    assert result.outcome is UploadOutcome.DUPLICATE and "another worker" in result.reason
    assert provider.submissions == []
    # ... and dies. The reconciler looks once the claim has run out and takes the job over.
    ports.clock.now += timedelta(minutes=2)
    assert reconcile(ports).submitted == 1 and len(provider.submissions) == 1
    assert ports.jobs.get(first.job_id).state is JobState.SUBMITTED


def test_an_unexpected_error_before_the_provider_call_leaves_nothing_behind(
    ports: FakePorts, provider: FakeProvider
) -> None:
    """The job is stored only with its first attempt's intent: an error before it leaves no job
    (and no claim to run out), so the redelivered event starts afresh."""
    ref = upload(ports, "incoming/boom.wav", tone_wav(1))
    real_read = ports.storage.read_head

    def broken(bucket: str, key: str, length: int) -> bytes:
        raise ConnectionError("S3 read failed")

    ports.storage.read_head = broken
    (result,) = submit_uploads([ref], ports)
    assert result.outcome is UploadOutcome.RETRY and "S3 read failed" in result.reason
    assert ports.jobs.jobs == {} and ports.jobs.saves == 0
    ports.storage.read_head = real_read
    assert submit_uploads([ref], ports)[0].outcome is UploadOutcome.SUBMITTED


def test_one_uploads_unexpected_error_does_not_stop_the_others(
    ports: FakePorts, provider: FakeProvider
) -> None:
    good = upload(ports, "incoming/good.wav", tone_wav(1))
    bad = upload(ports, "incoming/bad.wav", tone_wav(1))
    real_head = ports.storage.head

    def flaky_head(bucket: str, key: str) -> ObjectInfo | None:
        if key == bad.key:
            raise PermissionError("AccessDenied")
        return real_head(bucket, key)

    ports.storage.head = flaky_head
    outcomes = [r.outcome for r in submit_uploads([bad, good], ports)]
    assert outcomes == [UploadOutcome.RETRY, UploadOutcome.SUBMITTED]


def test_out_of_time_hands_the_rest_back_for_redelivery(ports: FakePorts, provider: FakeProvider) -> None:
    refs = [upload(ports, f"incoming/{i}.wav", tone_wav(1)) for i in range(3)]
    budget = iter([False, True, True])
    results = submit_uploads(refs, ports, out_of_time=lambda: next(budget))
    assert [r.outcome for r in results] == [UploadOutcome.SUBMITTED, UploadOutcome.RETRY, UploadOutcome.RETRY]
    assert len(ports.jobs.jobs) == 1


def test_a_failed_job_is_not_reopened_by_a_duplicate_event(ports: FakePorts, provider: FakeProvider) -> None:
    ref = upload(ports, "incoming/empty.wav", b"")
    (first,) = submit_uploads([ref], ports)
    assert first.outcome is UploadOutcome.REJECTED
    ports.storage.add(BUCKET, "incoming/empty.wav", b"")  # the same revision, notified again
    (again,) = submit_uploads([ref], ports)
    assert again.outcome is UploadOutcome.DUPLICATE and ports.jobs.get(first.job_id).state is JobState.FAILED


def test_a_lost_error_report_is_written_when_the_event_comes_again(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ref = upload(ports, "incoming/empty-again.wav", b"")
    real_put = ports.storage.put

    def failing_put(bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        raise ConnectionError("S3 unreachable")

    ports.storage.put = failing_put
    (first,) = submit_uploads([ref], ports)
    assert first.outcome is UploadOutcome.RETRY  # the job is FAILED, but the report is not there
    (job,) = ports.jobs.jobs.values()
    assert job.state is JobState.FAILED
    ports.storage.put = real_put
    (again,) = submit_uploads([ref], ports)
    assert again.outcome is UploadOutcome.DUPLICATE
    report = json.loads(ports.storage.get(BUCKET, "transcripts/empty-again.wav.error.json"))
    assert report["error"]["code"] == "EMPTY_FILE"
