"""Tiny audio fixtures made with the standard library."""

from __future__ import annotations

import io
import math
import struct
import wave


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
