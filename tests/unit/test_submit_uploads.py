import json

import pytest

from bucketscribe.model import JobState, ObjectRef
from bucketscribe.pipeline.submit import UploadOutcome, submit_uploads
from bucketscribe.providers.base import ProviderError
from tests.audio import tone_wav

pytestmark = pytest.mark.unit

BUCKET = "recordings"


def upload(ports, key: str, body: bytes) -> ObjectRef:
    ports.storage.add(BUCKET, key, body)
    return ObjectRef(bucket=BUCKET, key=key)


def test_a_valid_upload_becomes_one_submitted_job_with_a_signed_callback(ports, provider):
    ref = upload(ports, "incoming/calls/2026-11-20 agent+42.wav", tone_wav(1))
    (result,) = submit_uploads([ref], ports)
    assert result.outcome is UploadOutcome.SUBMITTED
    job = ports.jobs.get(result.job_id)
    assert job.state is JobState.SUBMITTED and job.provider_task_id == "task-1"
    assert job.profile == "calls" and job.source.etag
    ((items, profile),) = provider.submissions
    assert profile.name == "calls"
    assert items[0].media_url.startswith("https://storage.invalid/recordings/incoming/calls/")
    token = ports.signer.token_for(job.id)
    assert items[0].callback_url == f"https://cb.example.com/prod/callbacks/sis/{job.id}?token={token}"


def test_the_same_upload_three_times_submits_once(ports, provider):
    ref = upload(ports, "incoming/a.wav", tone_wav(1))
    outcomes = [submit_uploads([ref], ports)[0].outcome for _ in range(3)]
    assert outcomes == [UploadOutcome.SUBMITTED, UploadOutcome.DUPLICATE, UploadOutcome.DUPLICATE]
    assert len(provider.submissions) == 1


def test_a_reupload_with_new_content_is_a_new_job(ports, provider):
    first = submit_uploads([upload(ports, "incoming/a.wav", tone_wav(1))], ports)[0]
    second = submit_uploads([upload(ports, "incoming/a.wav", tone_wav(2))], ports)[0]
    assert second.outcome is UploadOutcome.SUBMITTED and second.job_id != first.job_id
    assert len(provider.submissions) == 2


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("transcripts/a.wav.json", "output prefix"),
        ("transcripts/calls/a.wav", "output prefix"),
        ("elsewhere/a.wav", "outside the input prefix"),
        ("incoming/notes.txt", "extension"),
    ],
)
def test_what_is_not_ours_is_skipped_with_a_reason_and_no_job(ports, provider, key, reason):
    (result,) = submit_uploads([upload(ports, key, tone_wav(1))], ports)
    assert result.outcome is UploadOutcome.SKIPPED and reason in result.reason
    assert ports.jobs.jobs == {} and provider.submissions == []


def test_a_deleted_object_is_skipped(ports, provider):
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
def test_bad_input_is_rejected_with_an_error_file_and_a_failed_job(ports, provider, body, code, words):
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


def test_a_busy_provider_means_retry_later_and_the_next_attempt_submits(ports, provider):
    ref = upload(ports, "incoming/a.wav", tone_wav(1))
    provider.submit_error = ProviderError("SIS.0312", "too many concurrent jobs", retryable=True)
    (result,) = submit_uploads([ref], ports)
    assert result.outcome is UploadOutcome.RETRY
    job = ports.jobs.get(result.job_id)
    assert job.state is JobState.ACCEPTED and job.attempts == 1 and job.error.code == "SIS.0312"
    provider.submit_error = None
    (again,) = submit_uploads([ref], ports)
    assert again.outcome is UploadOutcome.SUBMITTED
    assert ports.jobs.get(result.job_id).attempts == 2


def test_a_permanent_provider_error_fails_the_job_with_the_providers_message(ports, provider):
    ref = upload(ports, "incoming/a.wav", tone_wav(1))
    provider.submit_error = ProviderError("SIS.0032", "'property' is invalid", retryable=False)
    (result,) = submit_uploads([ref], ports)
    assert result.outcome is UploadOutcome.REJECTED
    report = json.loads(ports.storage.get(BUCKET, "transcripts/a.wav.error.json"))
    assert report["error"] == {"code": "SIS.0032", "message": "'property' is invalid", "retryable": False}


def test_one_bad_upload_does_not_stop_the_others(ports, provider):
    refs = [
        upload(ports, "incoming/empty.wav", b""),
        upload(ports, "incoming/good.wav", tone_wav(1)),
        upload(ports, "incoming/readme.md", b"# hi"),
    ]
    outcomes = {r.source.key: r.outcome for r in submit_uploads(refs, ports)}
    assert outcomes == {
        "incoming/empty.wav": UploadOutcome.REJECTED,
        "incoming/good.wav": UploadOutcome.SUBMITTED,
        "incoming/readme.md": UploadOutcome.SKIPPED,
    }


class FakeExtractor:
    def __init__(self, storage, *, fail: str | None = None):
        self.storage = storage
        self.fail = fail
        self.calls = []

    def extract(self, source, dest_key):
        from bucketscribe.media.extract import ExtractedAudio
        from bucketscribe.media.transcode import MediaError

        self.calls.append((source.key, dest_key))
        if self.fail:
            raise MediaError(self.fail)
        self.storage.put(source.bucket, dest_key, b"OggS" + b"\x00" * 100, content_type="audio/ogg")
        return ExtractedAudio(key=dest_key, size=104, duration_ms=1000, input_bytes=source.size or 0)


MP4_HEAD = b"\x00\x00\x00\x20ftypisom" + b"\x00" * 200


def test_a_video_is_sent_as_its_extracted_speech_track(ports, provider):
    ports.extractor = FakeExtractor(ports.storage)
    (result,) = submit_uploads([upload(ports, "incoming/demo.mp4", MP4_HEAD)], ports)
    assert result.outcome is UploadOutcome.SUBMITTED
    assert ports.extractor.calls == [("incoming/demo.mp4", "transcripts/demo.mp4.speech.ogg")]
    assert ports.jobs.get(result.job_id).media_key == "transcripts/demo.mp4.speech.ogg"
    ((items, _),) = provider.submissions
    assert items[0].media_url.startswith("https://storage.invalid/recordings/transcripts/demo.mp4.speech.ogg")


def test_a_supported_audio_file_is_sent_as_it_is(ports, provider):
    ports.extractor = FakeExtractor(ports.storage)
    submit_uploads([upload(ports, "incoming/a.wav", tone_wav(1))], ports)
    assert ports.extractor.calls == []


def test_a_file_over_the_size_limit_is_shrunk_instead_of_rejected(ports, provider):
    ports.extractor = FakeExtractor(ports.storage)
    (result,) = submit_uploads([upload(ports, "incoming/long.wav", tone_wav(40))], ports)
    assert result.outcome is UploadOutcome.SUBMITTED and len(ports.extractor.calls) == 1


def test_a_video_without_audio_is_rejected_with_the_reason(ports, provider):
    ports.extractor = FakeExtractor(ports.storage, fail="the file has no audio stream")
    (result,) = submit_uploads([upload(ports, "incoming/silent.mp4", MP4_HEAD)], ports)
    assert result.outcome is UploadOutcome.REJECTED
    assert ports.jobs.get(result.job_id).error.code == "NO_AUDIO"
    assert "no audio stream" in result.reason and provider.submissions == []


def test_a_duplicate_event_while_another_worker_submits_is_left_alone(ports, provider):
    from datetime import timedelta

    ref = upload(ports, "incoming/race.wav", tone_wav(1))
    provider.submit_error = ProviderError("SIS.0312", "busy", retryable=True)
    submit_uploads([ref], ports)  # leaves the job ACCEPTED, claim released
    provider.submit_error = None
    job_id = ref.job_id() if ref.etag else next(iter(ports.jobs.jobs))
    # Another worker holds the claim (it is submitting right now).
    held = ports.jobs.get(job_id).model_copy(update={"claimed_until": ports.clock() + timedelta(minutes=1)})
    ports.jobs.jobs[job_id] = held
    (result,) = submit_uploads([ref], ports)
    assert result.outcome is UploadOutcome.DUPLICATE and "another worker" in result.reason
    assert provider.submissions == []
    # The other worker died: once its claim has run out, a redelivery takes the job over.
    ports.clock.now += timedelta(minutes=2)
    (result,) = submit_uploads([ref], ports)
    assert result.outcome is UploadOutcome.SUBMITTED and len(provider.submissions) == 1
    assert ports.jobs.get(job_id).claimed_until is None


def test_an_unexpected_error_releases_the_claim(ports, provider):
    ref = upload(ports, "incoming/boom.wav", tone_wav(1))

    def explode(items, profile):
        raise RuntimeError("bug")

    provider.submit = explode
    (result,) = submit_uploads([ref], ports)
    assert result.outcome is UploadOutcome.RETRY and "RuntimeError: bug" in result.reason
    (job,) = ports.jobs.jobs.values()
    assert job.state is JobState.ACCEPTED and job.claimed_until is None


def test_one_uploads_unexpected_error_does_not_stop_the_others(ports, provider):
    good = upload(ports, "incoming/good.wav", tone_wav(1))
    bad = upload(ports, "incoming/bad.wav", tone_wav(1))
    real_head = ports.storage.head

    def flaky_head(bucket, key):
        if key == bad.key:
            raise PermissionError("AccessDenied")
        return real_head(bucket, key)

    ports.storage.head = flaky_head
    outcomes = {r.source.key: r.outcome for r in submit_uploads([bad, good], ports)}
    assert outcomes == {bad.key: UploadOutcome.RETRY, good.key: UploadOutcome.SUBMITTED}


def test_out_of_time_hands_the_rest_back_for_redelivery(ports, provider):
    refs = [upload(ports, f"incoming/{i}.wav", tone_wav(1)) for i in range(3)]
    budget = iter([False, True, True])
    results = submit_uploads(refs, ports, out_of_time=lambda: next(budget))
    assert [r.outcome for r in results] == [UploadOutcome.RETRY, UploadOutcome.RETRY, UploadOutcome.SUBMITTED]
    assert len(ports.jobs.jobs) == 1


def test_a_never_submitted_upload_redriven_from_the_dlq_is_tried_again(ports, provider):
    from datetime import timedelta

    from bucketscribe.pipeline.reconcile import reconcile

    ref = upload(ports, "incoming/redrive.wav", tone_wav(1))
    provider.submit_error = ProviderError("SIS.0312", "busy", retryable=True)
    submit_uploads([ref], ports)
    ports.clock.now += ports.limits.job_deadline + timedelta(minutes=1)
    reconcile(ports)
    (job,) = ports.jobs.jobs.values()
    assert job.state is JobState.FAILED and job.error.code == "NEVER_SUBMITTED"
    provider.submit_error = None
    (result,) = submit_uploads([ref], ports)  # the re-driven notification
    assert result.outcome is UploadOutcome.SUBMITTED and len(provider.submissions) == 1


def test_a_lost_error_report_is_written_when_the_event_comes_again(ports, provider):
    ref = upload(ports, "incoming/empty-again.wav", b"")
    real_put = ports.storage.put

    def failing_put(bucket, key, body, *, content_type):
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
