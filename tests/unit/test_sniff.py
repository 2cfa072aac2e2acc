import struct

import pytest

from bucketscribe.domain.media_sniff import MediaKind, kind_by_extension, sniff
from tests.audio import tone_wav

pytestmark = pytest.mark.unit


def test_wav_header_gives_duration_channels_and_rate() -> None:
    data = tone_wav(2.0, rate=8000, channels=2)
    sniffed = sniff(data[:4096], total_size=len(data))
    assert sniffed is not None
    assert (sniffed.container, sniffed.channels, sniffed.sample_rate) == ("wav", 2, 8000)
    assert sniffed.duration_ms == 2000


@pytest.mark.parametrize(
    ("head", "container"),
    [
        (b"OggS\x00\x02" + b"\x00" * 22 + b"OpusHead", "ogg-opus"),
        (b"ID3\x04\x00", "mp3"),
        (b"\xff\xfb\x90\x00", "mp3"),
        (b"\x00\x00\x00\x20ftypisom", "mp4"),
        (b"fLaC\x00", "flac"),
        (b"#!AMR\n", "amr"),
        (b"\x1a\x45\xdf\xa3\x01", "matroska"),
    ],
)
def test_containers_are_recognised_by_their_magic(head: bytes, container: str) -> None:
    sniffed = sniff(head)
    assert sniffed is not None and sniffed.container == container


def test_text_is_not_media() -> None:
    assert sniff(b"hello, this is a text file renamed to .wav\n") is None
    assert sniff(b"") is None


def test_extension_kinds() -> None:
    assert kind_by_extension("a/b.WAV") is MediaKind.AUDIO
    assert kind_by_extension("a/b.mp4") is MediaKind.VIDEO
    assert kind_by_extension("a/b.txt") is None
    assert kind_by_extension("a/b") is None


def test_a_wav_header_names_its_codec_so_routing_needs_no_decoder() -> None:
    pcm = sniff(tone_wav(2, rate=8000, channels=2))
    assert pcm is not None
    assert (pcm.codec, pcm.channels, pcm.sample_rate, pcm.duration_ms) == ("pcm_s16le", 2, 8000, 2000)
    # A telephone call: G.711 µ-law (format tag 7), 8 bits, 8 kHz stereo, one second.
    fmt = struct.pack("<HHIIHH", 7, 2, 8000, 16000, 2, 8)
    ulaw = b"RIFF" + struct.pack("<I", 36 + 16000) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
    ulaw += b"data" + struct.pack("<I", 16000) + bytes(16000)
    call = sniff(ulaw)
    assert call is not None and (call.codec, call.channels, call.duration_ms) == ("pcm_mulaw", 2, 1000)
