"""``decode_pcm16``: what the real-time streams send, from real files (PyAV, or the standard
library for a 16 kHz 16-bit WAV)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bucketscribe.media.transcode import MediaError, decode_pcm16
from bucketscribe.samples import sample
from tests.level_audio import level_pcm, level_wav

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
