import pytest

from bucketscribe.ports.provider import TaskStatus
from bucketscribe.providers.sis.adapter import SisProvider
from bucketscribe.providers.sis.result import SisResultError, transcript_from_sis

pytestmark = pytest.mark.unit

FINISHED = {
    "status": "FINISHED",
    "create_time": "2026-11-20T09:00:00.000Z",
    "finish_time": "2026-11-20T09:01:00.000Z",
    "audio_duration": 4200,
    "job_id": "j1",
    "segments": [
        {
            "start_time": 2100,
            "end_time": 4000,
            "result": {
                "text": "我想查询账单。",
                "analysis_info": {"role": "USER", "emotion": "NORMAL", "speed": 3.1},
                "word_info": [{"start_time": 2100, "end_time": 2400, "word": "我"}],
            },
        },
        {
            "start_time": 0,
            "end_time": 2000,
            "result": {"text": " 您好，请问有什么可以帮您？", "analysis_info": {"role": "AGENT"}},
        },
    ],
}


def test_finished_result_maps_to_ordered_segments_with_speakers_and_words() -> None:
    t = transcript_from_sis(FINISHED, model="chinese_8k_general", language="zh")
    assert [s.speaker for s in t.segments] == ["Agent", "Customer"]  # as real-time streams label a call
    assert t.segments[0].text == "您好，请问有什么可以帮您？"
    assert t.segments[1].words[0].text == "我" and t.segments[1].words[0].start_ms == 2100
    assert t.duration_ms == 4200 and t.speakers == ["Customer", "Agent"] and t.language == "zh"


def test_diarised_mono_roles_become_readable_labels() -> None:
    data = {
        "status": "FINISHED",
        "segments": [
            {"start_time": 0, "end_time": 1, "result": {"text": "a", "analysis_info": {"role": "speaker2"}}}
        ],
    }
    assert transcript_from_sis(data).segments[0].speaker == "Speaker 2"


@pytest.mark.parametrize("bad", [[], {"foo": 1}, {"status": "FINISHED", "segments": [{"start_time": "x"}]}])
def test_not_a_sis_result_is_a_clear_error(bad: object) -> None:
    with pytest.raises(SisResultError, match="not a SIS result"):
        transcript_from_sis(bad)  # type: ignore[arg-type]  # what arrives is not what it takes


def test_unfinished_result_has_no_transcript() -> None:
    with pytest.raises(SisResultError, match="WAITING"):
        transcript_from_sis({"status": "WAITING"})


def test_raw_results_map_to_task_statuses() -> None:
    assert SisProvider.result_from_raw("t", {"status": "WAITING"}).status is TaskStatus.PENDING
    failed = SisProvider.result_from_raw(
        "t", {"status": "ERROR", "error_code": "SIS.0535", "error_msg": "bad audio"}
    )
    assert failed.status is TaskStatus.FAILED and failed.files[0].error.code == "SIS.0535"
    done = SisProvider.result_from_raw("t", FINISHED)
    assert done.status is TaskStatus.DONE and done.files[0].raw == FINISHED
