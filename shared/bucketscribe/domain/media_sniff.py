"""What a file really is, from its extension *and* its first bytes.

An upload named ``.wav`` that holds text must be rejected with a reason before
a provider spends minutes failing on it; an upload whose extension is not a
media type at all (a README, our own outputs) is simply not ours.
"""

from __future__ import annotations

import struct
from enum import StrEnum
from pathlib import PurePosixPath

from pydantic import BaseModel


class MediaKind(StrEnum):
    AUDIO = "audio"
    VIDEO = "video"


AUDIO_EXTENSIONS = frozenset(
    {".wav", ".mp3", ".m4a", ".aac", ".ogg", ".opus", ".oga", ".flac", ".amr", ".wma", ".webm"}
)
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".flv", ".wmv", ".mpeg", ".mpg", ".3gp"})

# How many leading bytes ``sniff`` needs (the WAV header walk may look a little further).
SNIFF_BYTES = 4096


class Sniffed(BaseModel):
    container: str
    codec: str | None = None  # as ffmpeg names it, where the header says (WAV)
    duration_ms: int | None = None
    channels: int | None = None
    sample_rate: int | None = None


def kind_by_extension(key: str) -> MediaKind | None:
    suffix = PurePosixPath(key).suffix.lower()
    if suffix in AUDIO_EXTENSIONS:
        return MediaKind.AUDIO
    if suffix in VIDEO_EXTENSIONS:
        return MediaKind.VIDEO
    return None


def sniff(head: bytes, *, total_size: int | None = None) -> Sniffed | None:
    """Recognise a media container from its first bytes; ``None`` means "not media"."""
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return _sniff_wav(head, total_size)
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return Sniffed(container="avi")
    if head.startswith(b"OggS"):
        if b"OpusHead" in head[:128]:
            return Sniffed(container="ogg-opus")
        if b"Speex" in head[:128]:
            return Sniffed(container="ogg-speex")
        return Sniffed(container="ogg")
    if head.startswith(b"fLaC"):
        return Sniffed(container="flac")
    if head.startswith(b"ID3"):
        return Sniffed(container="mp3")
    if head[4:8] == b"ftyp":
        return Sniffed(container="mp4")
    if head.startswith(b"#!AMR"):
        return Sniffed(container="amr")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed(container="matroska")
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return Sniffed(container="asf")
    if head.startswith(b"FLV"):
        return Sniffed(container="flv")
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return Sniffed(container="mpeg")
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        # MPEG audio frame sync (mp3 without ID3) or ADTS AAC.
        return Sniffed(container="adts" if (head[1] & 0x06) == 0 else "mp3")
    return None


def _sniff_wav(head: bytes, total_size: int | None) -> Sniffed:
    offset = 12
    channels = sample_rate = byte_rate = None
    codec: str | None = None
    data_size: int | None = None
    while offset + 8 <= len(head):
        chunk_id = head[offset : offset + 4]
        (chunk_size,) = struct.unpack("<I", head[offset + 4 : offset + 8])
        if chunk_id == b"fmt " and offset + 24 <= len(head):
            audio_format, channels, sample_rate, byte_rate, _, bits = struct.unpack(
                "<HHIIHH", head[offset + 8 : offset + 24]
            )
            codec = _wav_codec(audio_format, bits)
        elif chunk_id == b"data":
            data_size = chunk_size
            # Streamed WAVs write 0 or 0xFFFFFFFF; trust the object size instead.
            if total_size is not None and (chunk_size in (0, 0xFFFFFFFF) or chunk_size > total_size):
                data_size = max(total_size - offset - 8, 0)
            break
        offset += 8 + chunk_size + (chunk_size & 1)
    duration_ms = None
    if data_size is not None and byte_rate:
        duration_ms = int(data_size * 1000 / byte_rate)
    return Sniffed(
        container="wav", codec=codec, duration_ms=duration_ms, channels=channels, sample_rate=sample_rate
    )


# WAVE_FORMAT_* tags (mmreg.h) → ffmpeg's codec names; extensible (0xFFFE) WAVs are left unknown.
_WAV_FORMATS = {2: "adpcm_ms", 6: "pcm_alaw", 7: "pcm_mulaw", 17: "adpcm_ima_wav"}


def _wav_codec(audio_format: int, bits: int) -> str | None:
    if audio_format == 1:
        return {8: "pcm_u8", 16: "pcm_s16le", 24: "pcm_s24le", 32: "pcm_s32le"}.get(bits)
    if audio_format == 3:
        return {32: "pcm_f32le", 64: "pcm_f64le"}.get(bits)
    return _WAV_FORMATS.get(audio_format)
