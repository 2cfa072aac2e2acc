"""Audio and video to 16 kHz mono Ogg Opus with PyAV, checked by reading the output back."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from bucketscribe_local.samples import sample

from bucketscribe.media.transcode import probe, to_speech_opus
from bucketscribe.ports.media_tools import MediaError

pytestmark = pytest.mark.integration


def opus_head(ogg: Path) -> tuple[int, int]:
    """(channel count, input sample rate) from the OpusHead packet (RFC 7845, section 5.1)."""
    data = ogg.read_bytes()
    head = data.index(b"OpusHead")
    channels = data[head + 9]
    (input_rate,) = struct.unpack_from("<I", data, head + 12)
    return channels, input_rate


@pytest.mark.parametrize(
    ("name", "min_ratio"),
    [("demo_video.mp4", 1.8), ("hello_en.wav", 8.0), ("call_stereo.wav", 4.0)],
)
def test_transcodes_to_16k_mono_opus(tmp_path: Path, name: str, min_ratio: float) -> None:
    source = sample(name).path
    dest = tmp_path / "speech.ogg"
    before = probe(source)

    result = to_speech_opus(source, dest)

    after = probe(dest)
    assert after.codec == "opus"
    assert after.channels == 1
    assert after.has_audio and not after.has_video
    assert opus_head(dest) == (1, 16_000)
    assert abs(after.duration_ms - before.duration_ms) <= 300
    assert abs(result.duration_ms - before.duration_ms) <= 300
    assert result.input_bytes == source.stat().st_size
    assert result.output_bytes == dest.stat().st_size
    assert result.ratio >= min_ratio, result


def test_bytes_in_gives_the_same_length(tmp_path: Path) -> None:
    source = sample("report_en.mp3").path
    result = to_speech_opus(source.read_bytes(), tmp_path / "out.ogg", bitrate=16_000)
    assert result.input_bytes == source.stat().st_size
    assert abs(probe(tmp_path / "out.ogg").duration_ms - probe(source).duration_ms) <= 300


def test_probe_describes_the_samples() -> None:
    video = probe(sample("demo_video.mp4").path)
    assert (video.has_audio, video.has_video, video.codec) == (True, True, "aac")
    call = probe(sample("call_stereo.wav").path.read_bytes())
    assert (call.channels, call.sample_rate, call.codec) == (2, 8000, "pcm_mulaw")
    mp3 = probe(sample("report_en.mp3").path)
    assert mp3.codec == "mp3"
    assert 3000 < mp3.duration_ms < 10_000


def test_a_text_file_is_a_media_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("meeting notes, not a recording\n" * 40, encoding="utf-8")
    dest = tmp_path / "out.ogg"

    with pytest.raises(MediaError):
        probe(text)
    with pytest.raises(MediaError):
        to_speech_opus(text, dest)
    with pytest.raises(MediaError):
        to_speech_opus(text.read_bytes(), dest)
    assert list(tmp_path.iterdir()) == [text], "no output and no partial file after a failure"


def test_a_video_without_sound_is_a_media_error(tmp_path: Path) -> None:
    silent_video = tmp_path / "silent.mp4"
    with av.open(str(silent_video), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), index * 40, np.uint8), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 5)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))

    info = probe(silent_video)
    assert (info.has_audio, info.has_video, info.channels) == (False, True, 0)
    with pytest.raises(MediaError, match="no audio stream"):
        to_speech_opus(silent_video, tmp_path / "out.ogg")
