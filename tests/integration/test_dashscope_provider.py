"""Our DashScope adapter (the real dashscope SDK inside) against the DashScope-compatible emulator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from bucketscribe_local.dashscope_server import DashScopeEmulator
from bucketscribe_local.emulator_kit.clock import ManualClock
from bucketscribe_local.faults import FaultPlan
from bucketscribe_local.speech import FixedSpeechEngine
from pydantic import SecretStr

from bucketscribe.ports.provider import ProviderError, SubmitItem, TaskResult, TaskStatus, file_key
from bucketscribe.providers.dashscope.files import DashScopeConfig, DashScopeProvider
from bucketscribe.providers.dashscope.options import DashScopeOptions
from tests.profiles import profile as make_profile

pytestmark = pytest.mark.integration

KEY = "sk-integration"


@pytest.fixture
def emulator() -> Iterator[DashScopeEmulator]:
    with DashScopeEmulator(api_keys=[KEY], engine=FixedSpeechEngine("hello from paraformer")) as e:
        yield e


def provider_for(
    emulator: DashScopeEmulator, *, key: str = KEY, sleeps: list[float] | None = None
) -> DashScopeProvider:
    config = DashScopeConfig(
        api_key=SecretStr(key), base_http_url=emulator.http_api_url, throttle_backoff_s=0.01
    )
    return DashScopeProvider(config, sleep=(sleeps.append if sleeps is not None else time.sleep))


def wait_finished(
    emulator: DashScopeEmulator, provider: DashScopeProvider, task_id: str | None
) -> TaskResult:
    """Wait for the emulator to say the task is final, then fetch it through the adapter."""
    assert task_id is not None
    emulator.backend.wait_for_task(task_id, timeout=15.0)
    return provider.fetch(task_id)


def test_one_task_for_many_files_and_each_file_finishes_on_its_own(
    emulator: DashScopeEmulator, media: str
) -> None:
    provider = provider_for(emulator)
    items = [
        SubmitItem(job_id="a", media_url=f"{media}/a.wav?sig=1"),
        SubmitItem(job_id="gone", media_url="http://127.0.0.1:9/nowhere.wav"),
        SubmitItem(job_id="b", media_url=f"{media}/b.wav?sig=2"),
    ]
    receipts = provider.submit(items, make_profile(provider="dashscope"))
    assert len({r.task_id for r in receipts}) == 1 and emulator.backend.counters.submit_calls == 1
    result = wait_finished(emulator, provider, receipts[0].task_id)
    assert result.status is TaskStatus.DONE
    good = result.outcome_for(file_key(items[0].media_url))
    # The status names the result file; it is downloaded only for the job that needs it.
    assert good.status is TaskStatus.DONE and good.transcript is None and good.result_url
    good = provider.load_result(good)
    assert good.transcript is not None and good.raw is not None
    assert good.transcript.text == "hello from paraformer"
    assert good.raw["transcripts"][0]["channel_id"] == 0
    bad = result.outcome_for(file_key(items[1].media_url))
    assert bad.status is TaskStatus.FAILED and bad.error is not None
    assert bad.error.code == "InvalidFile.DownloadFailed"
    assert "cannot be downloaded" in bad.error.message
    assert result.outcome_for(file_key(items[2].media_url)).status is TaskStatus.DONE


def test_profile_parameters_reach_the_service(emulator: DashScopeEmulator, media: str) -> None:
    provider = provider_for(emulator)
    profile = make_profile(
        provider="dashscope", dashscope=DashScopeOptions(diarization_enabled=True, speaker_count=2)
    )
    (receipt,) = provider.submit([SubmitItem(job_id="a", media_url=f"{media}/a.wav")], profile)
    result = wait_finished(emulator, provider, receipt.task_id)
    transcript = provider.load_result(result.files[0]).transcript
    assert transcript is not None and transcript.segments[0].speaker == "Speaker 1"


def test_throttling_is_backed_off_and_then_goes_through(emulator: DashScopeEmulator, media: str) -> None:
    sleeps: list[float] = []
    emulator.set_faults(FaultPlan(submit_error_rate=1.0, submit_error_status=429))
    provider = provider_for(emulator, sleeps=sleeps)
    with pytest.raises(ProviderError) as caught:
        provider.submit(
            [SubmitItem(job_id="a", media_url=f"{media}/a.wav")], make_profile(provider="dashscope")
        )
    assert caught.value.retryable and caught.value.code.startswith("Throttling")
    assert sleeps == [0.01, 0.02, 0.04, 0.08]  # exponential backoff before giving the message back
    emulator.set_faults(FaultPlan())
    (receipt,) = provider.submit(
        [SubmitItem(job_id="a", media_url=f"{media}/a.wav")], make_profile(provider="dashscope")
    )
    assert receipt.task_id


def test_a_wrong_key_keeps_the_upload_for_a_retry(emulator: DashScopeEmulator, media: str) -> None:
    with pytest.raises(ProviderError) as caught:
        provider_for(emulator, key="sk-wrong").submit(
            [SubmitItem(job_id="a", media_url=f"{media}/a.wav")], make_profile(provider="dashscope")
        )
    assert caught.value.retryable and caught.value.code == "InvalidApiKey"


def test_an_expired_task_is_not_found(media: str) -> None:
    clock = ManualClock()
    with DashScopeEmulator(api_keys=[KEY], engine=FixedSpeechEngine("hi"), clock=clock) as emulator:
        provider = provider_for(emulator)
        (receipt,) = provider.submit(
            [SubmitItem(job_id="a", media_url=f"{media}/a.wav")], make_profile(provider="dashscope")
        )
        assert receipt.task_id is not None
        assert wait_finished(emulator, provider, receipt.task_id).status is TaskStatus.DONE
        clock.advance(24 * 3600)  # DashScope keeps tasks 24 h after they end
        assert provider.fetch(receipt.task_id).status is TaskStatus.NOT_FOUND


def test_the_query_rate_stays_under_the_limit(emulator: DashScopeEmulator, media: str) -> None:
    provider = provider_for(emulator)
    (receipt,) = provider.submit(
        [SubmitItem(job_id="a", media_url=f"{media}/a.wav")], make_profile(provider="dashscope")
    )
    assert receipt.task_id is not None
    started = time.monotonic()
    for _ in range(45):
        provider.fetch(receipt.task_id)
    assert emulator.backend.counters.query_throttled == 0
    assert time.monotonic() - started >= 1.0  # 45 queries at 20/s need more than a second


def test_a_task_whose_answer_was_lost_is_found_by_searching_the_window(media: str) -> None:
    clock = ManualClock()
    faults = FaultPlan(lost_response_rate=1.0)  # the task is created, the answer is a 500
    with DashScopeEmulator(
        api_keys=[KEY], engine=FixedSpeechEngine("hi"), faults=faults, clock=clock
    ) as emulator:
        provider = provider_for(emulator)
        lost_url, other_url = f"{media}/lost.wav?sig=1", f"{media}/other.wav?sig=2"
        with pytest.raises(ProviderError) as caught:
            provider.submit([SubmitItem(job_id="a", media_url=lost_url)], make_profile(provider="dashscope"))
        assert caught.value.maybe_done and caught.value.retryable
        emulator.set_faults(FaultPlan())
        clock.advance(120)
        (other,) = provider.submit(
            [SubmitItem(job_id="b", media_url=other_url)], make_profile(provider="dashscope")
        )
        [lost_row, _] = emulator.backend.emulated_jobs()
        started = datetime.fromtimestamp(clock.now() - 300, UTC)

        emulator.backend.wait_for_task(lost_row.task_id, timeout=15.0)
        emulator.backend.wait_for_task(other.task_id or "", timeout=15.0)
        search = provider.search_tasks(started, clock.datetime(), {file_key(lost_url), file_key(other_url)})
        assert search.found == {file_key(lost_url): lost_row.task_id, file_key(other_url): other.task_id}
        assert search.undecided == 0
        # A window that ends before the lost submission does not list it.
        before = provider.search_tasks(
            started, datetime.fromtimestamp(clock.now() - 200, UTC), {file_key(lost_url)}
        )
        assert before.found == {}
