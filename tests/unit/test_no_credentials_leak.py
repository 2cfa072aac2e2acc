"""No presigned URL, token or signature reaches an error report, a status answer or a log line.

PyAV names the URL it could not read, SDKs name the URL a request went to, and a callback URL
carries the token that lets a callback in: every path by which such a message can leave us is
driven here with a live-looking signed URL in it, and what comes out is searched for it.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest

from bucketscribe.domain.job import JobError, JobState
from bucketscribe.domain.redaction import redact
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.observability import logger as service_logger
from bucketscribe.pipeline.status import job_status
from bucketscribe.pipeline.submit import submit_uploads
from bucketscribe.ports.provider import ProviderError
from tests.audio import tone_wav
from tests.fakes import FakeMediaTools, FakePorts, FakeProvider

pytestmark = pytest.mark.unit

SIGNED = (
    "https://recordings.s3.eu-central-1.amazonaws.com/incoming/a.mp3?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=ASIAEXAMPLE%2F20261207%2Feu-central-1%2Fs3%2Faws4_request"
    "&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEJr%2F%2F%2F%2FLIVE&X-Amz-Signature=9f2c1e0d4b5a6978"
)
SECRETS = (
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "9f2c1e0d4b5a6978",
    "IQoJb3JpZ2luX2VjEJr",
    "ASIAEXAMPLE",
)


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.fixture
def logs() -> Iterator[Callable[[], str]]:
    """Everything the service logger writes, formatted as it formats every line (Powertools' JSON,
    redacted). capsys cannot see it: Powertools' handler holds the stdout it was made with, which
    is pytest's own capture, not the test's, so a handler of our own sits beside it."""
    service_logger.setLevel(logging.DEBUG)
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(service_logger.registered_formatter)
    service = logging.getLogger(service_logger.name)
    service.addHandler(handler)
    try:
        yield lambda: written.getvalue()
    finally:
        service.removeHandler(handler)


def test_the_log_capture_sees_the_service_logger(logs: Callable[[], str]) -> None:
    """Without this, every ``leaked(logs()) == []`` below would pass on an empty capture."""
    service_logger.warning("about to fetch", extra={"url": SIGNED})
    written = logs()
    assert "about to fetch" in written and "recordings.s3.eu-central-1.amazonaws.com" in written
    assert leaked(written) == []


def test_redact_keeps_where_and_drops_the_credentials() -> None:
    text = redact(f"cannot read the media file: Invalid data found when processing input: '{SIGNED}'")
    assert leaked(text) == []
    assert "https://recordings.s3.eu-central-1.amazonaws.com/incoming/a.mp3?" in text
    callback = "https://cb.example.com/prod/callbacks/sis/abc?attempt=1&exp=1796000000&token=0f3a9c77e1d2"
    assert "0f3a9c77e1d2" not in redact(f"POST {callback} answered 500")
    assert "sk-live1234567890" not in redact("Authorization: Bearer sk-live1234567890")


def test_a_probe_error_naming_the_signed_url_reaches_no_report_status_or_log(
    ports: FakePorts, logs: Callable[[], str]
) -> None:
    # A truncated MP3 (an ID3 header and a few zero bytes): PyAV fails on the presigned URL.
    ports.storage.add("recordings", "incoming/a.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(64))
    tools = FakeMediaTools(ports.storage)
    tools.fail = (
        f"cannot read the media file: [Errno 1094995529] Invalid data found when processing input: '{SIGNED}'"
    )
    ports.media_tools = tools
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key="incoming/a.mp3")], ports)
    job = ports.jobs.get(result.job_id)
    assert job.state is JobState.FAILED and job.error.code == "NO_AUDIO"
    assert "Invalid data found" in job.error.message  # the reason survives, the credentials do not
    report = ports.storage.get("recordings", "transcripts/a.mp3.error.json").decode()
    status = job_status(job.id, ports.jobs)
    assert status is not None
    assert leaked(report) == [] and leaked(status.model_dump_json()) == [] and leaked(logs()) == []


def test_a_provider_refusal_naming_the_url_reaches_no_report_or_log(
    ports: FakePorts, provider: FakeProvider, logs: Callable[[], str]
) -> None:
    ports.storage.add("recordings", "incoming/b.wav", tone_wav(1))
    provider.submit_error = ProviderError("SIS.0032", f"data url is invalid: {SIGNED}", retryable=False)
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key="incoming/b.wav")], ports)
    job = ports.jobs.get(result.job_id)
    assert job.state is JobState.FAILED and job.error.code == "SIS.0032"
    assert leaked(job.model_dump_json()) == []
    assert leaked(ports.storage.get("recordings", "transcripts/b.wav.error.json").decode()) == []
    assert leaked(logs()) == []


def test_an_unexpected_error_naming_the_url_reaches_no_result_or_log(
    ports: FakePorts, provider: FakeProvider, logs: Callable[[], str]
) -> None:
    ports.storage.add("recordings", "incoming/c.wav", tone_wav(1))
    provider.submit_error = RuntimeError(  # type: ignore[assignment]  # not a provider's error: a bug's
        f"HTTPSConnectionPool: Max retries exceeded with url: {SIGNED}"
    )
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key="incoming/c.wav")], ports)
    assert leaked(result.model_dump_json()) == []
    job = ports.jobs.get(result.job_id)
    assert leaked(job.model_dump_json()) == [] and leaked(logs()) == []


def test_a_job_record_written_before_redaction_is_read_without_its_credentials() -> None:
    stored = JobError(code="NO_AUDIO", message="x").model_dump() | {"message": f"no usable audio: {SIGNED}"}
    assert leaked(json.dumps(JobError.model_validate(stored).model_dump())) == []
