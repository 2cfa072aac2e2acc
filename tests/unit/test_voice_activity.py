"""Voice-activity detection of the DashScope emulator's real-time streams: where utterances end."""

from __future__ import annotations

import struct

import pytest
from bucketscribe_local.emulator_kit.voice_activity import Utterance, VoiceActivity

pytestmark = pytest.mark.unit

RATE = 16000


def speech(seconds: float, amplitude: int = 3000) -> bytes:
    count = int(seconds * RATE)
    return struct.pack(f"<{count}h", *(amplitude if (i // 20) % 2 else -amplitude for i in range(count)))


def silence(seconds: float) -> bytes:
    return bytes(int(seconds * RATE) * 2)


def test_a_pause_ends_an_utterance_with_a_little_audio_either_side() -> None:
    vad = VoiceActivity(RATE, end_silence_ms=700)
    pcm = bytearray(silence(0.5) + speech(1.0))
    assert vad.scan(pcm) == [] and vad.open_start_ms == 400  # 100 ms before the speech
    pcm += silence(0.6)
    assert vad.scan(pcm) == []  # 600 ms of quiet: not yet a pause
    pcm += silence(0.2)
    assert vad.scan(pcm) == [Utterance(400, 1700)]  # ends 200 ms after the last speech
    assert vad.open_start_ms is None


def test_audio_arriving_in_odd_pieces_is_cut_the_same() -> None:
    whole = silence(0.3) + speech(0.8) + silence(1.0) + speech(0.5) + silence(1.0)
    at_once = VoiceActivity(RATE, end_silence_ms=800).scan(whole)
    vad = VoiceActivity(RATE, end_silence_ms=800)
    pieces: list[Utterance] = []
    received = bytearray()
    for start in range(0, len(whole), 1234):  # not a whole number of 20 ms frames
        received += whole[start : start + 1234]
        pieces += vad.scan(received)
    assert pieces == at_once == [Utterance(200, 1300), Utterance(2000, 2600 + 200)]


def test_a_monologue_is_cut_at_the_longest_utterance_and_goes_on() -> None:
    vad = VoiceActivity(RATE, end_silence_ms=700, max_utterance_ms=2000)
    assert vad.scan(speech(5.0)) == [Utterance(0, 2000), Utterance(2000, 4000)]
    assert vad.open_start_ms == 4000
    assert vad.close(5000) == Utterance(4000, 5000)


def test_a_monologue_is_cut_in_a_breath_not_mid_word() -> None:
    # 3.3 s of speech, a 200 ms breath (too short to end an utterance), 3 s more: at 5 s the
    # utterance is cut in the breath, and what follows it goes on as the next utterance.
    vad = VoiceActivity(RATE, end_silence_ms=700, max_utterance_ms=5000)
    pcm = speech(3.3) + silence(0.2) + speech(3.0)
    assert vad.scan(pcm) == [Utterance(0, 3400)]
    assert vad.open_start_ms == 3400
    assert vad.close(6500) == Utterance(3400, 6500)


def test_without_a_breath_the_cut_falls_on_the_quietest_frame() -> None:
    vad = VoiceActivity(RATE, end_silence_ms=700, max_utterance_ms=3000)
    pcm = speech(2.0) + speech(0.1, amplitude=600) + speech(2.0)
    assert vad.scan(pcm) == [Utterance(0, 2100)]  # the end of the softer stretch (the last equal frame)
    assert vad.open_start_ms == 2100


def test_quiet_noise_is_not_speech_and_the_end_of_input_ends_what_was_said() -> None:
    vad = VoiceActivity(RATE, end_silence_ms=700)
    assert vad.scan(speech(2.0, amplitude=200)) == [] and vad.open_start_ms is None
    vad.scan(speech(2.0, amplitude=200) + speech(0.5))
    assert vad.close(2500) == Utterance(1900, 2500)
    assert vad.close(2600) is None
