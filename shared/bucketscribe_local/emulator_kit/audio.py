"""WAV and PCM helpers: wrap headerless audio so any engine can decode it, read a WAV header, and
sniff what a file is (for the result metadata a service reports).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PCM_FORMAT_TAG = 1  # WAVE_FORMAT_PCM; A-law is 6, mu-law 7


def wav_file(
    samples: bytes, *, sample_rate: int, bits: int = 16, channels: int = 1, format_tag: int = 1
) -> bytes:
    """A canonical 44-byte RIFF/WAVE header in front of ``samples`` (little-endian, interleaved)."""
    block_align = channels * bits // 8
    header = b"RIFF" + struct.pack("<I", 36 + len(samples)) + b"WAVE"
    header += b"fmt " + struct.pack(
        "<IHHIIHH", 16, format_tag, channels, sample_rate, sample_rate * block_align, block_align, bits
    )
    return header + b"data" + struct.pack("<I", len(samples)) + samples


@dataclass(frozen=True)
class WavLayout:
    sample_rate: int
    channels: int
    sample_width: int
    audio_format: int
    data_offset: int
    data_size: int | None


def parse_wav_header(data: bytes) -> WavLayout | None:
    """Find the ``fmt `` and ``data`` chunks of a RIFF/WAVE header (None if not there yet)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset = 12
    fmt: tuple[int, int, int, int] | None = None
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (chunk_size,) = struct.unpack("<I", data[offset + 4 : offset + 8])
        body = offset + 8
        if chunk_id == b"fmt ":
            if body + 16 > len(data):
                return None
            audio_format, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[body : body + 16])
            fmt = (audio_format, channels, rate, bits // 8)
        elif chunk_id == b"data":
            if fmt is None:
                return None
            # Streamed WAV headers often carry 0 or 0xFFFFFFFF as the data size.
            size = chunk_size if 0 < chunk_size < 0xFFFFFFFF else None
            return WavLayout(
                sample_rate=fmt[2],
                channels=fmt[1],
                sample_width=fmt[3],
                audio_format=fmt[0],
                data_offset=body,
                data_size=size,
            )
        offset = body + chunk_size + (chunk_size & 1)
    return None


@dataclass(frozen=True)
class AudioProperties:
    audio_format: str
    channels: int
    sample_rate: int | None
    duration_ms: int | None


def probe_audio(data: bytes) -> AudioProperties:
    """What a file is: exact for WAV, a guess from the magic bytes otherwise."""
    layout = parse_wav_header(data)
    if layout is not None:
        frame_bytes = max(layout.channels * layout.sample_width, 1)
        size = layout.data_size if layout.data_size is not None else len(data) - layout.data_offset
        size = min(size, len(data) - layout.data_offset)
        duration = int(size / frame_bytes * 1000 / layout.sample_rate) if layout.sample_rate else None
        codec = f"pcm_s{layout.sample_width * 8}le" if layout.audio_format == PCM_FORMAT_TAG else "wav"
        return AudioProperties(codec, layout.channels, layout.sample_rate, duration)
    if data[:4] == b"OggS":
        codec = "opus" if b"OpusHead" in data[:128] else "vorbis"
    elif data[:4] == b"fLaC":
        codec = "flac"
    elif data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        codec = "mp3"
    elif data[4:8] == b"ftyp":
        codec = "aac"
    elif data[:4] == b"\x1aE\xdf\xa3":
        codec = "webm"
    else:
        codec = "unknown"
    return AudioProperties(codec, 1, None, None)


def audio_length_ms(data: bytes) -> int | None:
    """How long the recording in ``data`` lasts, as the real service measures it from the audio
    itself (not what an instant engine pretends it heard): the WAV header, else PyAV."""
    probed = probe_audio(data).duration_ms
    if probed is not None:
        return probed
    from bucketscribe.media.transcode import probe
    from bucketscribe.ports.media_tools import MediaError

    try:
        info = probe(data)
    except (MediaError, ValueError):
        return None
    return info.duration_ms if info.has_audio else None
