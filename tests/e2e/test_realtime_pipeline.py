"""Real-time profiles on the local stack: an upload under a ``mode: realtime`` prefix is streamed by
the real submit function (real dashscope SDK → the emulator's WebSocket) and every output written
with no callback; its job records the stream's delays. The digest engine answers at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import srt
import webvtt
from bucketscribe_local.samples import sample
from bucketscribe_local.stack import LocalStack

from bucketscribe.domain.job import AttemptState, JobState
from bucketscribe.domain.transcript import Transcript
from tests.e2e.conftest import stack_options

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

PROFILES = [
    {"name": "default", "prefix": ""},
    {"name": "live", "prefix": "live/", "provider": "dashscope-realtime", "realtime": {"translate": "en"}},
    {
        "name": "live-calls",
        "prefix": "live-calls/",
        "provider": "dashscope-realtime",
        "realtime": {"channels": "split", "speakers": ["Agent", "Customer"]},
    },
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options = stack_options(tmp_path_factory.mktemp("realtime")).model_copy(
        update={"instant": False, "digest": True, "profiles_json": json.dumps(PROFILES)}
    )
    with LocalStack(options) as running:
        yield running


def test_a_realtime_upload_is_streamed_and_written_with_translation_and_its_delays(stack: LocalStack) -> None:
    key = "incoming/live/hello_en.wav"
    ref = stack.upload(sample("hello_en.wav").path.read_bytes(), key, content_type="audio/wav")

    job = stack.wait_for_jobs([ref], timeout_s=60)[key]

    assert job.state is JobState.DONE, job.error
    assert (job.provider, job.model, job.profile) == ("dashscope-realtime", "gummy-realtime-v1", "live")
    (attempt,) = job.attempts
    assert (attempt.state, attempt.bound_by) == (AttemptState.ACCEPTED, "stream")
    assert attempt.task_id and len(attempt.task_id) == 32
    assert attempt.stream is not None
    assert attempt.stream.first_package_ms is not None and attempt.stream.last_package_ms is not None
    assert 4800 <= attempt.stream.audio_ms <= 5000

    stem = stack.layout.output_key(key, "")
    assert sorted(job.outputs) == sorted(
        f"{stem}{s}" for s in ("json", "txt", "srt", "vtt", "en.srt", "en.vtt")
    )
    transcript = Transcript.model_validate_json(stack.read_output(f"{stem}json"))
    assert transcript.segments and transcript.source is not None and transcript.source.key == key
    (translation,) = transcript.translations
    assert translation.language == "en" and len(translation.segments) == len(transcript.segments)
    assert stack.read_output(f"{stem}txt").decode().strip()
    cues = list(srt.parse(stack.read_output(f"{stem}srt").decode()))
    assert cues and len(webvtt.from_string(stack.read_output(f"{stem}vtt").decode())) == len(cues)
    bilingual = list(srt.parse(stack.read_output(f"{stem}en.srt").decode()))
    assert bilingual and all(len(c.content.splitlines()) == 2 for c in bilingual)
    assert len(webvtt.from_string(stack.read_output(f"{stem}en.vtt").decode())) == len(bilingual)
    # Streamed over the WebSocket; no file-transcription task was created for it.
    counters = stack.dashscope.backend.counters
    assert counters.ws_tasks_finished >= 1 and counters.tasks_created == 0


def test_a_realtime_call_profile_streams_each_channel_and_labels_the_speakers(
    stack: LocalStack, tmp_path: Path
) -> None:
    key = "incoming/live-calls/call_stereo.wav"
    ref = stack.upload(sample("call_stereo.wav").path.read_bytes(), key, content_type="audio/wav")

    job = stack.wait_for_jobs([ref], timeout_s=60)[key]

    assert job.state is JobState.DONE, job.error
    assert job.provider_task_id is not None and len(job.provider_task_id.split("+")) == 2
    transcript = Transcript.model_validate_json(stack.read_output(stack.layout.output_key(key, "json")))
    assert transcript.speakers == ["Agent", "Customer"]
    assert {s.speaker for s in transcript.segments} == {"Agent", "Customer"}
    assert [s.start_ms for s in transcript.segments] == sorted(s.start_ms for s in transcript.segments)
    text = stack.read_output(stack.layout.output_key(key, "txt")).decode()
    assert "Agent: " in text and "Customer: " in text
