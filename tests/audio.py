"""Tiny audio fixtures made with the standard library."""

from __future__ import annotations

import io
import math
import struct
import wave
from collections.abc import Sequence
from pathlib import Path


def tone_wav(seconds: float = 1.0, *, rate: int = 16000, channels: int = 1, freq: float = 440.0) -> bytes:
    frames = int(seconds * rate)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        samples = (int(8000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(frames))
        out.writeframes(b"".join(struct.pack("<h", s) * channels for s in samples))
    return buffer.getvalue()


def write_wav(
    path: Path,
    *,
    seconds: float,
    rate: int = 8000,
    channels: int = 1,
    tones: Sequence[tuple[float, float]] = (),
    freq: int = 440,
) -> Path:
    """A 16-bit WAV streamed to disk, however long: silence, with a tone over each (start, end)
    stretch given in seconds. Written a second at a time, so hours take seconds and no memory."""
    one_second = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate))) * channels for i in range(rate)
    )
    silent_second = bytes(len(one_second))
    frame_bytes = 2 * channels

    def write(out: wave.Wave_write, second: bytes, frames: int) -> None:
        whole, rest = divmod(frames, rate)
        for _ in range(whole):
            out.writeframesraw(second)
        out.writeframesraw(second[: rest * frame_bytes])

    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        position = 0
        for start, end in [*sorted(tones), (seconds, seconds)]:
            write(out, silent_second, round(start * rate) - position)
            write(out, one_second, round(end * rate) - round(start * rate))
            position = round(end * rate)
    return path


def sparse_silent_wav(path: Path, *, seconds: float, rate: int = 8000) -> Path:
    """A silent 16-bit mono WAV of any length that takes no disk space: a header, then a hole."""
    data = round(seconds * rate) * 2
    header = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", data)
    with path.open("wb") as out:
        out.write(header)
        out.truncate(len(header) + data)
    return path
