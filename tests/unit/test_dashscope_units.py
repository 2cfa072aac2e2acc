"""DashScope pieces that need no wire: result mapping, profile checks, push checks, rate limit."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bucketscribe.domain.callback_tokens import same_secret, stale
from bucketscribe.ports.provider import PushRejected
from bucketscribe.providers.dashscope.options import DashScopeOptions
from bucketscribe.providers.dashscope.push import TaskFinishedEvent
from bucketscribe.providers.dashscope.rate_limit import RateLimiter
from bucketscribe.providers.dashscope.result import DashScopeResultError, transcript_from_dashscope
from bucketscribe.providers.registry import load_profiles

pytestmark = pytest.mark.unit

RESULT = {
    "file_url": "https://b.example/a.wav?sig=1",
    "properties": {
        "audio_format": "pcm_s16le",
        "channels": [0],
        "original_sampling_rate": 16000,
        "original_duration_in_milliseconds": 3834,
    },
    "transcripts": [
        {
            "channel_id": 0,
            "content_duration_in_milliseconds": 3720,
            "text": "Hello world. Second one.",
            "sentences": [
                {
                    "begin_time": 2000,
                    "end_time": 3800,
                    "text": "Second one.",
                    "sentence_id": 2,
                    "speaker_id": 1,
                    "words": [
                        {"begin_time": 2000, "end_time": 2500, "text": "Second", "punctuation": ""},
                        {"begin_time": 2500, "end_time": 3800, "text": "one", "punctuation": "."},
                    ],
                },
                {
                    "begin_time": 100,
                    "end_time": 1900,
                    "text": "Hello world.",
                    "sentence_id": 1,
                    "speaker_id": 0,
                    "words": [
                        {"begin_time": 100, "end_time": 596, "text": "Hello ", "punctuation": ""},
                        {"begin_time": 596, "end_time": 1900, "text": "world", "punctuation": "."},
                    ],
                },
            ],
        }
    ],
}


def test_result_maps_sentences_words_and_speakers() -> None:
    t = transcript_from_dashscope(RESULT, model="paraformer-v2")
    assert [s.text for s in t.segments] == ["Hello world.", "Second one."]
    assert [w.text for w in t.segments[0].words] == ["Hello", "world."]
    assert [s.speaker for s in t.segments] == ["Speaker 1", "Speaker 2"]
    assert t.duration_ms == 3834 and t.channels == 1 and t.provider == "dashscope"
    assert t.segments[0].channel is None


def test_two_channel_result_keeps_the_channel() -> None:
    two = {
        **RESULT,
        "properties": {"channels": [0, 1]},
        "transcripts": [
            {"channel_id": 1, "sentences": [{"begin_time": 0, "end_time": 10, "text": "right"}]},
            {"channel_id": 0, "sentences": [{"begin_time": 5, "end_time": 10, "text": "left"}]},
        ],
    }
    t = transcript_from_dashscope(two)
    assert [(s.channel, s.text) for s in t.segments] == [(1, "right"), (0, "left")]
    assert t.channels == 2


@pytest.mark.parametrize("bad", [[], {"x": 1}, {"transcripts": [{"sentences": [{"begin_time": "x"}]}]}])
def test_not_a_result_is_a_clear_error(bad: object) -> None:
    with pytest.raises(DashScopeResultError, match="not a DashScope result"):
        transcript_from_dashscope(bad)  # type: ignore[arg-type]  # what arrives is not what it takes


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"model": "paraformer-v1", "language_hints": ["en"]}, "only with paraformer-v2"),
        ({"model": "paraformer-v2", "language_hints": ["xx"]}, "not supported"),
        ({"model": "paraformer-8k-v1", "vocabulary_id": "v"}, "needs a v2 model"),
        ({"model": "paraformer-v2", "phrase_id": "p"}, "for v1 models"),
        ({"speaker_count": 3}, "needs diarization_enabled"),
        ({"diarization_enabled": True, "channel_id": [0, 1]}, "mono audio only"),
        ({"model": "paraformer-v3"}, "Input should be"),
    ],
)
def test_invalid_combinations_are_refused_before_any_submission(options: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        load_profiles([{"provider": "dashscope", "dashscope": options}])


def test_parameters_are_what_the_sdk_sends() -> None:
    params = DashScopeOptions(
        model="paraformer-v2",
        language_hints=["en", "zh"],
        diarization_enabled=True,
        speaker_count=2,
        special_word_filter={"filter_with_empty": {"word_list": ["x"]}},
    ).parameters()
    assert params["language_hints"] == ["en", "zh"] and params["speaker_count"] == 2
    assert params["special_word_filter"] == '{"filter_with_empty": {"word_list": ["x"]}}'
    assert "vocabulary_id" not in params and "phrase_id" not in params


def event(**overrides: Any) -> str:
    body = {
        "specversion": "1.0",
        "id": "e1",
        "source": "acs.dashscope",
        "type": "dashscope:System:AsyncTaskFinish",
        "time": "2026-11-20T09:00:00Z",
        "data": {"task_id": "t1", "task_status": "SUCCEEDED"},
    }
    body.update(overrides)
    import json

    return json.dumps(body)


def test_push_event_parsing() -> None:
    parsed = TaskFinishedEvent.parse(event())
    assert parsed.data.task_id == "t1" and parsed.time == datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert parsed.as_push().sent_at == parsed.time
    for bad in (event(source="acs.other"), event(type="x"), event(data={}), "nope", "[]"):
        with pytest.raises(PushRejected):
            TaskFinishedEvent.parse(bad)


def test_push_credentials_and_freshness() -> None:
    now = datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert same_secret("secret", "secret")
    assert not same_secret(None, "secret") and not same_secret("wrong", "secret")
    assert not same_secret("sécret", "secret")  # any text is safe to compare
    assert stale(now - timedelta(seconds=59), now) is None
    assert stale(now + timedelta(seconds=30), now) is None
    assert "timestamp" in stale(None, now)
    assert "more than 60 s" in stale(now - timedelta(seconds=61), now)


def test_rate_limiter_spaces_requests() -> None:
    clock = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter(20, clock=lambda: clock[0], sleep=sleep)
    for _ in range(60):
        limiter.acquire()
    # 20 at once (the burst), then 40 more at 20/s: about 2 s of waiting in all.
    assert 1.9 <= sum(sleeps) <= 2.1


def test_files_are_matched_whatever_encoding_the_service_echoes() -> None:
    from bucketscribe.ports.provider import FileOutcome, TaskResult, TaskStatus, file_key

    sent = "https://b.s3.amazonaws.com/incoming/a%20b%2Bc/%C3%BCn%C3%AF.wav?X-Amz-Signature=1"
    echoed = "https://b.s3.amazonaws.com/incoming/a b+c/ünï.wav?X-Amz-Signature=2"
    other = "https://b.s3.amazonaws.com/incoming/other.wav"
    result = TaskResult(
        task_id="t",
        status=TaskStatus.DONE,
        files=[
            FileOutcome(status=TaskStatus.FAILED, file_url=other),
            FileOutcome(status=TaskStatus.DONE, file_url=echoed),
        ],
    )
    assert file_key(sent) == file_key(echoed)
    assert result.outcome_for(file_key(sent)).status is TaskStatus.DONE
    lone = TaskResult(
        task_id="t", status=TaskStatus.DONE, files=[FileOutcome(status=TaskStatus.DONE, file_url="x")]
    )
    assert lone.outcome_for(file_key(sent)).status is TaskStatus.DONE
    assert result.outcome_for("b.s3.amazonaws.com/incoming/missing.wav").error.code == "FILE_NOT_IN_TASK"
