"""``RealtimeTranslator`` (real dashscope SDK) against the DashScope emulator's WebSocket on 127.0.0.1.

``LevelEngine`` "hears" how loud each second of audio is, so every stream's text says which audio
reached the engine: parallel streams of different loudness must each get back their own levels.
"""

from __future__ import annotations

import io
import struct
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from bucketscribe.local.dashscope_server import DashScopeEmulator
from bucketscribe.local.speech import (
    ProgressCallback,
    Recognition,
    RecognizedSegment,
    RecognizedWord,
    UnreadableAudio,
)
from bucketscribe.model import Transcript
from bucketscribe.providers.realtime import FRAME_BYTES, RealtimeError, RealtimeTranslator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

KEY = "sk-realtime-test"
RATE = 16000


def level_pcm(levels: list[int]) -> bytes:
    """One second per level: a square wave of amplitude ``level * 1000``."""
    samples: list[int] = []
    for level in levels:
        amplitude = level * 1000
        samples.extend(amplitude if (i // 20) % 2 else -amplitude for i in range(RATE))
    return struct.pack(f"<{len(samples)}h", *samples)


class LevelEngine:
    """One segment per whole second: "级别N。" (zh) or "level N." (its English), N = peak / 1000."""

    def recognize(
        self,
        audio: bytes | Path,
        *,
        language: str | None = None,
        translate: bool = False,
        channel: int | None = None,
        word_timestamps: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> Recognition:
        data = audio.read_bytes() if isinstance(audio, Path) else audio
        try:
            with wave.open(io.BytesIO(data)) as reader:
                frames = reader.readframes(reader.getnframes())
        except (wave.Error, EOFError) as error:
            raise UnreadableAudio(str(error)) from error
        samples = struct.unpack(f"<{len(frames) // 2}h", frames[: len(frames) // 2 * 2])
        segments = []
        for start in range(0, len(samples) - RATE + 1, RATE):
            level = round(max(abs(s) for s in samples[start : start + RATE]) / 1000)
            begin, end = start * 1000 // RATE, (start + RATE) * 1000 // RATE
            first, second = ("level", f"{level}.") if translate else ("级别", f"{level}。")
            segments.append(
                RecognizedSegment(
                    start_ms=begin,
                    end_ms=end,
                    text=f"{first} {second}" if translate else first + second,
                    words=[
                        RecognizedWord(start_ms=begin, end_ms=begin + 400, text=first),
                        RecognizedWord(start_ms=begin + 400, end_ms=end, text=second),
                    ],
                )
            )
        return Recognition(language="zh", duration_ms=len(samples) * 1000 // RATE, segments=segments)


@pytest.fixture
def emulator() -> Iterator[DashScopeEmulator]:
    # Interim passes every 0.5 s of audio: the adapter must keep only the final sentences.
    with DashScopeEmulator(api_keys=[KEY], engine=LevelEngine(), interim_interval_s=0.5) as running:
        yield running


def translator(emulator: DashScopeEmulator, **options: float) -> RealtimeTranslator:
    return RealtimeTranslator(api_key=KEY, websocket_url=emulator.ws_url, **options)  # type: ignore[arg-type]


def test_stream_returns_final_sentences_with_word_times_and_translation(emulator: DashScopeEmulator) -> None:
    pcm = level_pcm([3, 5, 7])
    progress: list[tuple[int, int]] = []

    transcript = translator(emulator, finish_timeout_s=20).stream(
        pcm, source_language="zh", target_language="en", on_progress=lambda s, t: progress.append((s, t))
    )

    assert [s.text for s in transcript.segments] == ["级别3。", "级别5。", "级别7。"]
    assert [(s.start_ms, s.end_ms) for s in transcript.segments] == [(0, 1000), (1000, 2000), (2000, 3000)]
    words = transcript.segments[1].words
    assert [(w.start_ms, w.end_ms, w.text) for w in words] == [(1000, 1400, "级别"), (1400, 2000, "5。")]
    assert [t.language for t in transcript.translations] == ["en"]
    assert [s.text for s in transcript.translations[0].segments] == ["level 3.", "level 5.", "level 7."]
    assert transcript.translations[0].segments[2].start_ms == 2000
    assert (transcript.provider, transcript.model, transcript.language) == (
        "dashscope",
        "gummy-realtime-v1",
        "zh",
    )
    assert transcript.duration_ms == 3000
    # 100 ms frames, progress after each, ending at the whole recording.
    assert len(progress) == len(pcm) // FRAME_BYTES == 30
    assert progress[-1] == (3000, 3000)
    assert emulator.backend.counters.ws_tasks_finished == 1


def test_stream_without_translation_has_no_translations(emulator: DashScopeEmulator) -> None:
    transcript = translator(emulator).stream(level_pcm([2, 4]))
    assert transcript.text == "级别2。 级别4。"
    assert transcript.translations == []
    assert transcript.language is None  # "auto": the service does not say what it heard


def test_failed_task_raises_realtime_error_with_dashscope_code(emulator: DashScopeEmulator) -> None:
    with pytest.raises(RealtimeError) as caught:
        translator(emulator, finish_timeout_s=20).stream(level_pcm([1]), target_language="fr")
    assert caught.value.code == "InvalidParameter"
    assert "fr" in caught.value.message
    assert caught.value.task_id
    assert emulator.backend.counters.ws_tasks_failed == 1


def test_wrong_api_key_raises_realtime_error(emulator: DashScopeEmulator) -> None:
    bad = RealtimeTranslator(api_key="sk-wrong", websocket_url=emulator.ws_url, finish_timeout_s=20)
    with pytest.raises(RealtimeError) as caught:
        bad.stream(level_pcm([1]))
    assert "api-key" in caught.value.message.lower() or caught.value.code == "401"


def test_parallel_streams_each_get_their_own_result(emulator: DashScopeEmulator) -> None:
    shared = translator(emulator, finish_timeout_s=30)
    inputs = {n: [n, n + 1] for n in (1, 3, 5, 7)}
    results: dict[int, Transcript] = {}
    errors: list[BaseException] = []
    both_streaming = threading.Barrier(len(inputs), timeout=20)

    def run(n: int) -> None:
        try:
            both_streaming.wait()  # start together, so the tasks overlap on the server
            results[n] = shared.stream(level_pcm(inputs[n]), target_language="en")
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
