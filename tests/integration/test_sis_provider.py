"""Our SIS adapter (the real huaweicloudsdksis SDK inside) against the SIS-compatible emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bucketscribe_local.emulator_kit.clock import ManualClock
from bucketscribe_local.faults import FaultPlan
from bucketscribe_local.sis_server import SisEmulator
from bucketscribe_local.speech import FixedSpeechEngine
from pydantic import SecretStr

from bucketscribe.ports.provider import ProviderError, SubmitItem, TaskResult, TaskStatus
from bucketscribe.providers.sis.adapter import SisCredentials, SisProvider
from bucketscribe.providers.sis.options import SisOptions
from tests.profiles import profile as make_profile

pytestmark = pytest.mark.integration


@pytest.fixture
def media_url(media: str) -> str:
    return f"{media}/a.wav"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sis(clock: ManualClock) -> Iterator[SisEmulator]:
    with SisEmulator(engine=FixedSpeechEngine("hello from sis"), clock=clock) as emulator:
        yield emulator


def provider_for(sis: SisEmulator, *, sk: str | None = None) -> SisProvider:
    credentials = SisCredentials(ak=sis.ak, sk=SecretStr(sk or sis.sk), project_id=sis.project_id)
    return SisProvider(credentials, endpoint=sis.url)


def wait_done(sis: SisEmulator, provider: SisProvider, task_id: str | None) -> TaskResult:
    """Wait for the emulator to say the job ended, then fetch it through the adapter."""
    assert task_id is not None
    sis.backend.wait_for_job(task_id, timeout=10.0)
    return provider.fetch(task_id)


def test_submit_then_fetch_gives_a_canonical_transcript(sis: SisEmulator, media_url: str) -> None:
    provider = provider_for(sis)
    profile = make_profile(sis=SisOptions(property="chinese_16k_media", need_word_info=True, add_punc=True))
    (receipt,) = provider.submit([SubmitItem(job_id="j1", media_url=media_url)], profile)
    assert receipt.task_id and receipt.error is None
    result = wait_done(sis, provider, receipt.task_id)
    assert result.status is TaskStatus.DONE
    transcript = result.files[0].transcript
    assert transcript is not None and result.files[0].raw is not None
    assert transcript.text == "hello from sis"
    assert [w.text for w in transcript.segments[0].words] == ["hello", "from", "sis"]
    assert result.files[0].raw["status"] == "FINISHED"


def test_a_wrong_secret_keeps_the_upload_for_a_retry_instead_of_failing_the_file(
    sis: SisEmulator, media_url: str
) -> None:
    with pytest.raises(ProviderError) as caught:
        provider_for(sis, sk="not-the-secret").submit(
            [SubmitItem(job_id="j", media_url=media_url)], make_profile()
        )
    assert caught.value.retryable and caught.value.code.startswith("APIG")
    assert sis.backend.counters().jobs_accepted == 0


def test_an_invalid_property_fails_the_item_with_sis_code(sis: SisEmulator, media_url: str) -> None:
    profile = make_profile(sis=SisOptions(property="klingon_16k_general"))
    (receipt,) = provider_for(sis).submit([SubmitItem(job_id="j", media_url=media_url)], profile)
    assert receipt.task_id is None and receipt.error is not None
    assert receipt.error.code == "SIS.0032" and not receipt.error.retryable


@pytest.mark.parametrize(("status", "code"), [(429, "SIS.0312"), (503, "SIS.0100")])
def test_throttling_and_outages_are_retryable(
    sis: SisEmulator, media_url: str, status: int, code: str
) -> None:
    sis.set_faults(FaultPlan(submit_error_rate=1.0, submit_error_status=status))
    with pytest.raises(ProviderError) as caught:
        provider_for(sis).submit([SubmitItem(job_id="j", media_url=media_url)], make_profile())
    assert caught.value.retryable and caught.value.code == code


def test_an_expired_task_is_not_found(sis: SisEmulator, clock: ManualClock, media_url: str) -> None:
    provider = provider_for(sis)
    (receipt,) = provider.submit([SubmitItem(job_id="j", media_url=media_url)], make_profile())
    assert receipt.task_id is not None
    assert wait_done(sis, provider, receipt.task_id).status is TaskStatus.DONE
    clock.advance(72 * 3600)  # SIS keeps results 72 h after they finish
    assert provider.fetch(receipt.task_id).status is TaskStatus.NOT_FOUND


def test_an_unreachable_service_is_retryable() -> None:
    credentials = SisCredentials(ak="a", sk=SecretStr("b"), project_id="p")
    provider = SisProvider(credentials, endpoint="http://127.0.0.1:9", timeout_s=(1.0, 1.0))
    with pytest.raises(ProviderError) as caught:
        provider.fetch("x")
    assert caught.value.retryable
