"""``decode_pcm16``: what the real-time streams send, from real files (PyAV, or the standard
library for a 16 kHz 16-bit WAV)."""

from __future__ import annotations

import array
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from bucketscribe_local.samples import sample

from bucketscribe.media.transcode import decode_pcm16
from bucketscribe.ports.media_tools import MediaError, SpeechPcm
from tests.level_audio import RATE, level_pcm, level_wav

pytestmark = pytest.mark.integration


def test_a_16_khz_wav_is_read_without_loading_a_decoder(tmp_path: Path) -> None:
    mono = level_wav(tmp_path / "mono.wav", [3, 0, 5])
    script = (
        "import sys; from pathlib import Path; from bucketscribe.media.transcode import decode_pcm16; "
        f"speech = decode_pcm16(Path({str(mono)!r})); print(len(speech.tracks[0]), 'av' in sys.modules)"
    )
    printed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert printed.stdout.split() == [str(len(level_pcm([3, 0, 5]))), "False"]
    assert decode_pcm16(mono).tracks == [level_pcm([3, 0, 5])]


def test_a_stereo_wav_splits_into_its_channels_and_mixes_into_one(tmp_path: Path) -> None:
    stereo = level_wav(tmp_path / "call.wav", [3, 0], [0, 7])
    split = decode_pcm16(stereo, split_channels=True)
    assert split.tracks == [level_pcm([3, 0]), level_pcm([0, 7])] and split.source_channels == 2
    mixed = decode_pcm16(stereo)
    assert len(mixed.tracks) == 1 and mixed.duration_ms == 2000 and mixed.source_channels == 2


def test_an_8_khz_mu_law_call_is_resampled_per_channel() -> None:
    call = sample("call_stereo.wav").path
    split = decode_pcm16(call, split_channels=True)
    assert len(split.tracks) == 2 and len(split.tracks[0]) == len(split.tracks[1])
    assert abs(split.duration_ms - 11435) <= 20
    assert split.tracks[0] != split.tracks[1]  # agent and customer speak at different times


@pytest.mark.parametrize("name", ["weather_en.ogg", "report_en.mp3", "demo_video.mp4"])
def test_compressed_audio_and_video_decode_to_16_khz_mono(name: str) -> None:
    speech = decode_pcm16(sample(name).path)
    assert len(speech.tracks) == 1 and speech.tracks[0]
    assert (
        abs(
            speech.duration_ms - {"weather_en.ogg": 4173, "report_en.mp3": 4212, "demo_video.mp4": 6355}[name]
        )
        < 120
    )


def test_what_is_not_audio_is_a_media_error(tmp_path: Path) -> None:
    notes = tmp_path / "notes.wav"
    notes.write_text("meeting notes, not a recording", encoding="utf-8")
    with pytest.raises(MediaError):
        decode_pcm16(notes)


def levels_heard(track: bytes) -> list[int]:
    """Each second's level: its mean loudness / 1000 (a square wave's is its amplitude, where a
    resampler's ringing moves the peaks), in the middle half of the second."""
    samples = array.array("h", track)
    middle = range(RATE // 4, 3 * RATE // 4)
    return [
        round(sum(abs(samples[start + i]) for i in middle) / len(middle) / 1000)
        for start in range(0, len(samples) - RATE + 1, RATE)
    ]


@pytest.mark.parametrize("rate", [RATE, 48000], ids=["16 kHz, standard library", "48 kHz, PyAV"])
def test_a_split_of_six_channels_streams_the_first_two_and_says_what_it_left_out(
    tmp_path: Path, rate: int
) -> None:
    channels = ([3, 0], [0, 7], [9, 9], [1, 1], [8, 8], [8, 8])
    surround = level_wav(tmp_path / "surround.wav", *channels, rate=rate)
    split = decode_pcm16(surround, split_channels=True)
    assert [levels_heard(track) for track in split.tracks] == [[3, 0], [0, 7]]  # as recorded, no remix
    assert (split.source_channels, split.dropped_channels) == (6, 4)
    assert decode_pcm16(surround).dropped_channels == 0  # a downmix leaves nothing out


def peak_traced_bytes(work: Callable[[], SpeechPcm]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("rate", "channels", "allowed"),
    [
        # The PCM read once, straight from the file (reading the file first made it 2x).
        (RATE, 1, 1.5),
        # The kept tracks while they grow, then copied out: about 2x (with the file and its
        # frames held besides, it was 4x).
        (RATE, 2, 3.0),
        # 48 kHz in, 16 kHz out: the PCM is a third of the file, about 0.7x with its copy (1.7x).
        (48000, 1, 1.0),
    ],
    ids=["16 kHz mono", "16 kHz stereo split", "48 kHz mono, PyAV"],
)
def test_the_upload_is_decoded_from_its_file_not_held_whole_in_memory(
    tmp_path: Path, rate: int, channels: int, allowed: float
) -> None:
    """Python's allocations while decoding (tracemalloc counts them exactly), against the file's size."""
    upload = level_wav(tmp_path / "upload.wav", *([[3, 5, 7, 0] * 3] * channels), rate=rate)

    def decode() -> SpeechPcm:
        return decode_pcm16(upload, split_channels=channels > 1)

    decode()  # the first call imports what it needs: not counted
    peak = peak_traced_bytes(decode)
    assert peak < allowed * upload.stat().st_size, (peak, upload.stat().st_size)
