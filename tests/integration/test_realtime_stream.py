"""``RealtimeStreamer`` (the real dashscope SDK) against the DashScope emulator's WebSocket on 127.0.0.1.

``LevelEngine`` "hears" how loud each second of audio is, so every stream's text says which audio
reached the engine: parallel streams of different loudness must each get back their own levels.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bucketscribe_local.dashscope_server import DashScopeEmulator
from bucketscribe_local.emulator_kit.clock import ManualClock
from bucketscribe_local.speech import Recognition

from bucketscribe.domain.transcript import Transcript
from bucketscribe.ports.media_tools import SpeechPcm
from bucketscribe.providers.dashscope.options import RealtimeOptions
from bucketscribe.providers.dashscope.realtime import (
    FRAME_BYTES,
    FRAME_MS,
    RealtimeError,
    RealtimeStreamer,
    Sentence,
    stream_recording,
)
from tests.level_audio import LevelEngine, level_pcm

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

KEY = "sk-realtime-test"
WAIT_S = 20.0
GUMMY_ZH_TO_EN = RealtimeOptions(source_language="zh", translate="en")


@pytest.fixture
def emulator() -> Iterator[DashScopeEmulator]:
    # Interim passes every 0.5 s of audio: the streamer must keep only the final sentences.
    with DashScopeEmulator(api_keys=[KEY], engine=LevelEngine(), interim_interval_s=0.5) as running:
        yield running


def streamer(emulator: DashScopeEmulator, finish_timeout_s: float = 20.0) -> RealtimeStreamer:
    return RealtimeStreamer(api_key=KEY, websocket_url=emulator.ws_url, finish_timeout_s=finish_timeout_s)


def test_stream_returns_final_sentences_with_word_times_translation_and_delays(
    emulator: DashScopeEmulator,
) -> None:
    pcm = level_pcm([3, 5, 7])
    progress: list[tuple[int, int]] = []

    recording = streamer(emulator).stream(
        pcm, GUMMY_ZH_TO_EN, on_progress=lambda s, t: progress.append((s, t))
    )

    transcript = recording.transcript
    assert [s.text for s in transcript.segments] == ["级别3。", "级别5。", "级别7。"]
    assert [(s.start_ms, s.end_ms) for s in transcript.segments] == [(0, 1000), (1000, 2000), (2000, 3000)]
    words = transcript.segments[1].words
    assert [(w.start_ms, w.end_ms, w.text) for w in words] == [(1000, 1400, "级别"), (1400, 2000, "5。")]
    assert [t.language for t in transcript.translations] == ["en"]
    assert [s.text for s in transcript.translations[0].segments] == ["level 3.", "level 5.", "level 7."]
    assert (transcript.provider, transcript.model, transcript.language) == (
        "dashscope",
        "gummy-realtime-v1",
        "zh",
    )
    assert transcript.duration_ms == 3000
    # 100 ms frames, progress after each, ending at the whole recording.
    assert len(progress) == len(pcm) // FRAME_BYTES == 30
    assert progress[-1] == (3000, 3000)
    # The SDK's own measures: a task id, and both delays measured (a result came, the task ended).
    assert len(recording.task_id) == 32
    metrics = recording.metrics
    assert metrics.first_package_ms is not None and metrics.first_package_ms >= 0
    assert metrics.last_package_ms is not None and metrics.last_package_ms >= 0
    assert metrics.audio_ms == 3000 and metrics.elapsed_ms > 0
    assert emulator.backend.counters.ws_tasks_finished == 1


def test_results_arrive_while_the_rest_of_the_file_is_still_to_be_sent(emulator: DashScopeEmulator) -> None:
    """An utterance, then 20 s of silence and another: the first one's final sentence comes back
    while the silence is still being sent.

    The SDK handles what arrives only between frames it sends, so the frames keep going: each
    waits up to one frame's length for the first final sentence (a live source's pace) and none
    once it is in. A service that answered only after the whole file would be found out.
    """
    pcm = level_pcm([3, 0, 0, *[0] * 20, 5])
    total_ms = len(pcm) // 32
    events: list[str] = []
    first_final = threading.Event()

    def heard(sentence: Sentence) -> None:
        events.append(f"{'final' if sentence.final else 'interim'} {sentence.text}")
        if sentence.final:
            first_final.set()

    def sent(sent_ms: int, _: int) -> None:
        events.append(f"sent {sent_ms}")
        first_final.wait(FRAME_MS / 1000)

    streamer(emulator).stream(pcm, RealtimeOptions(), on_sentence=heard, on_progress=sent)

    assert events.index("final 级别3。") < events.index(f"sent {total_ms}"), events
    assert [e for e in events if e.startswith("final")] == ["final 级别3。", "final 级别5。"]


class HeardSpeechEngine(LevelEngine):
    """LevelEngine that says when a pass first heard something (a whole second of audio)."""

    def __init__(self) -> None:
        super().__init__()
        self.heard_speech = threading.Event()

    def recognize(self, audio: bytes | Path, **options: Any) -> Recognition:
        recognition = super().recognize(audio, **options)
        if recognition.segments:
            self.heard_speech.set()
        return recognition


def test_a_long_utterance_is_heard_as_interim_hypotheses_before_its_final_sentence() -> None:
    """Three seconds without a pause: one utterance, whose final pass runs only after finish-task.

    The sender holds after two seconds until a pass has heard a whole second (LevelEngine hears
    nothing in less): that pass can only be an interim one, and the service sends its result
    before finish-task is even sent, so the client must hear it before any final sentence.
    """
    engine = HeardSpeechEngine()
    with DashScopeEmulator(api_keys=[KEY], engine=engine, interim_interval_s=0.5) as running:
        heard: list[Sentence] = []

        def hold_until_heard(sent_ms: int, _: int) -> None:
            if sent_ms == 2000:
                assert engine.heard_speech.wait(WAIT_S), "no pass heard the first two seconds"

        streamer(running).stream(
            level_pcm([2, 4, 6]),
            RealtimeOptions(),
            on_sentence=heard.append,
            on_progress=hold_until_heard,
            pace="fast",
        )
    finals = [s for s in heard if s.final]
    assert [s.text for s in finals] == ["级别2。", "级别4。", "级别6。"]
    before_final = heard[: heard.index(finals[0])]
    assert before_final, "no interim result came before the first final sentence"
    assert all(not s.final and s.text.startswith("级别2。") for s in before_final), before_final


def test_paraformer_realtime_streams_through_the_recognition_sdk(emulator: DashScopeEmulator) -> None:
    heard: list[Sentence] = []
    options = RealtimeOptions(model="paraformer-realtime-v2", source_language="zh")
    recording = streamer(emulator).stream(level_pcm([4, 0, 0, 8]), options, on_sentence=heard.append)
    assert [s.text for s in recording.transcript.segments] == ["级别4。", "级别8。"]
    assert recording.transcript.model == "paraformer-realtime-v2"
    assert recording.transcript.translations == []
    assert recording.metrics.first_package_ms is not None
    assert [s.text for s in heard if s.final] == ["级别4。", "级别8。"]


def test_stream_without_translation_has_no_translations(emulator: DashScopeEmulator) -> None:
    transcript = streamer(emulator).stream(level_pcm([2, 4]), RealtimeOptions()).transcript
    assert transcript.text == "级别2。 级别4。"
    assert transcript.translations == []
    # "auto": DashScope does not say what it heard; the emulator adds what its engine ran with.
    assert transcript.language == "zh"


def test_failed_task_raises_realtime_error_with_dashscope_code(emulator: DashScopeEmulator) -> None:
    with pytest.raises(RealtimeError) as caught:
        streamer(emulator).stream(level_pcm([1]), RealtimeOptions(translate="fr"))
    assert caught.value.code == "InvalidParameter"
    assert "fr" in caught.value.message
    assert caught.value.task_id
    assert not caught.value.retryable
    assert emulator.backend.counters.ws_tasks_failed == 1


def test_wrong_api_key_raises_realtime_error(emulator: DashScopeEmulator) -> None:
    bad = RealtimeStreamer(api_key="sk-wrong", websocket_url=emulator.ws_url, finish_timeout_s=20)
    with pytest.raises(RealtimeError) as caught:
        bad.stream(level_pcm([1]), RealtimeOptions())
    assert "api-key" in caught.value.message.lower() or caught.value.code == "401"


def test_a_stream_idle_for_23_seconds_is_closed_by_the_service_with_a_clear_error() -> None:
    """The sender stalls after one second of audio; the emulator's clock is moved past the idle limit."""
    clock = ManualClock()
    with DashScopeEmulator(api_keys=[KEY], engine=LevelEngine(), clock=clock) as running:
        released = threading.Event()

        def stall(sent_ms: int, _: int) -> None:
            if sent_ms == 1000:
                frames = 10
                assert running.backend.wait_for_counters(lambda c: c.ws_audio_frames >= frames, WAIT_S)
                clock.advance(running.backend.idle_timeout_s + 1)
                assert running.backend.wait_for_counters(lambda c: c.ws_tasks_failed == 1, WAIT_S)
                released.set()

        with pytest.raises(RealtimeError) as caught:
            streamer(running).stream(level_pcm([3, 3, 3]), RealtimeOptions(), on_progress=stall)
    assert released.is_set()
    error = caught.value
    assert error.idle_timeout and error.retryable
    assert error.code == "CLIENT_ERROR"
    assert "23 s without audio" in error.describe() and "request timeout after 23 seconds" in error.describe()


def test_parallel_streams_each_get_their_own_result(emulator: DashScopeEmulator) -> None:
    shared = streamer(emulator, finish_timeout_s=30)
    inputs = {n: [n, n + 1] for n in (1, 3, 5, 7)}
    results: dict[int, Transcript] = {}
    errors: list[BaseException] = []
    all_streaming = threading.Barrier(len(inputs), timeout=20)

    def run(n: int) -> None:
        try:
            all_streaming.wait()  # start together, so the tasks overlap on the server
            results[n] = shared.stream(level_pcm(inputs[n]), RealtimeOptions(translate="en")).transcript
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in inputs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=40)
    assert not errors, errors
    assert sorted(results) == sorted(inputs)
    for n, transcript in results.items():
        assert [s.text for s in transcript.segments] == [f"级别{n}。", f"级别{n + 1}。"]
        assert [s.text for s in transcript.translations[0].segments] == [f"level {n}.", f"level {n + 1}."]
    assert emulator.backend.counters.ws_tasks_finished == len(inputs)


def test_a_split_call_streams_each_channel_and_merges_the_speakers_by_time(
    emulator: DashScopeEmulator,
) -> None:
    agent = level_pcm([3, 0, 0, 0, 0, 5])
    customer = level_pcm([0, 0, 0, 7, 0, 0])
    speech = SpeechPcm(tracks=[agent, customer], source_channels=2)
    heard: list[Sentence] = []
    done: list[str | None] = []

    recording = stream_recording(
        streamer(emulator),
        speech,
        RealtimeOptions(translate="en", channels="split"),
        on_sentence=heard.append,
        on_stream_done=lambda _, speaker: done.append(speaker),
    )

    transcript = recording.transcript
    assert [(s.speaker, s.channel, s.text) for s in transcript.segments] == [
        ("Agent", 0, "级别3。"),
        ("Customer", 1, "级别7。"),
        ("Agent", 0, "级别5。"),
    ]
    assert transcript.speakers == ["Agent", "Customer"] and transcript.channels == 2
    assert [s.text for s in transcript.translations[0].segments] == ["level 3.", "level 7.", "level 5."]
    assert sorted(done, key=str) == ["Agent", "Customer"]
    assert {(s.speaker, s.text) for s in heard if s.final} == {
        ("Agent", "级别3。"),
        ("Customer", "级别7。"),
        ("Agent", "级别5。"),
    }
    assert len(recording.task_id.split("+")) == 2
    assert emulator.backend.counters.ws_tasks_finished == 2


STARVE_S = 1.0


class _StarvedThreads:
    """Stands in for the ``threading`` module the SDK's recognizer uses: the first worker thread it
    starts gets to the service before ``start()`` returns, as when the caller's thread gets no CPU
    for a while (a loaded machine). ``start()`` returns once that worker's audio generator has
    ended without a frame (what the SDK does when it finds the recognizer not yet running), or
    after ``STARVE_S`` when the generator is held back until then."""

    def __init__(self, generator_ended_empty: threading.Event) -> None:
        self.starved = 0
        self.generator_ended_empty = generator_ended_empty

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)

    def Thread(self, *args: Any, **kwargs: Any) -> threading.Thread:
        worker = threading.Thread(*args, **kwargs)
        if self.starved == 0 and "receive_worker" in str(kwargs.get("target")):
            self.starved += 1
            start = worker.start

            def start_and_starve() -> None:
                start()
                self.generator_ended_empty.wait(STARVE_S)

            worker.start = start_and_starve
        return worker


@pytest.mark.parametrize(
    ("sdk_module", "sdk_class", "options"),
    [
        ("translation_recognizer", "TranslationRecognizerRealtime", GUMMY_ZH_TO_EN),
        ("recognition", "Recognition", RealtimeOptions(model="paraformer-realtime-v2", source_language="zh")),
    ],
)
def test_a_worker_that_reaches_the_service_before_start_returns_still_sends_the_audio(
    emulator: DashScopeEmulator,
    monkeypatch: pytest.MonkeyPatch,
    sdk_module: str,
    sdk_class: str,
    options: RealtimeOptions,
) -> None:
    """The SDK marks its recognizer running only after starting its worker; a worker that got to
    the service first sent finish-task without audio, and the file came back DONE with no sentence
    (a test under load saw it). The streamer holds the worker's audio until start() is over."""
    module = importlib.import_module(f"dashscope.audio.asr.{sdk_module}")
    recognizer_class = getattr(module, sdk_class)
    sdk_generator = recognizer_class._input_stream_cycle
    ended_empty = threading.Event()

    def watched(recognizer: Any) -> Iterator[bytes]:
        frames = 0
        for frame in sdk_generator(recognizer):
            frames += 1
            yield frame
        if frames == 0:
            ended_empty.set()

    monkeypatch.setattr(recognizer_class, "_input_stream_cycle", watched)
    starved = _StarvedThreads(ended_empty)
    monkeypatch.setattr(module, "threading", starved)

    recording = streamer(emulator).stream(level_pcm([3, 0, 0, 5]), options)

    assert starved.starved == 1 and not ended_empty.is_set()
    assert [s.text for s in recording.transcript.segments] == ["级别3。", "级别5。"]
    counters = emulator.backend.counters
    assert counters.ws_tasks_started == 1 and counters.ws_tasks_finished == 1
