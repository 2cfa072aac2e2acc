"""Audio whose "words" say how loud it is, and an engine that hears exactly that.

``level_pcm([3, 0, 5])`` is one second per level (0: silence; N: a square wave of amplitude
N × 1000), so voice activity cuts it where the zeros are. ``LevelEngine`` recognises one segment
per whole second of what it is given: "级别N。" ("level N." when translating), N being that
second's peak / 1000. A stream's results therefore say which audio reached the engine, and
parallel streams of different levels show at once whether their results were mixed up.
"""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

from bucketscribe_local.speech import (
    ProgressCallback,
    Recognition,
    RecognizedSegment,
    RecognizedWord,
    UnreadableAudio,
)

RATE = 16000


def level_samples(levels: list[int], rate: int = RATE) -> list[int]:
    samples: list[int] = []
    for level in levels:
        amplitude = level * 1000
        samples.extend(amplitude if (i // 20) % 2 else -amplitude for i in range(rate))
    return samples


def level_pcm(levels: list[int]) -> bytes:
    """One second per level, 16-bit little-endian 16 kHz mono."""
    samples = level_samples(levels)
    return struct.pack(f"<{len(samples)}h", *samples)


def level_wav(path: Path, *channels: list[int], rate: int = RATE) -> Path:
    """A WAV (16 kHz unless told) with one channel per list of levels (all the same length)."""
    tracks = [level_samples(levels, rate) for levels in channels]
    interleaved = [sample for frame in zip(*tracks, strict=True) for sample in frame]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(len(tracks))
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(struct.pack(f"<{len(interleaved)}h", *interleaved))
    return path


class EngineFailure(RuntimeError):
    """What ``LevelEngine`` raises on its poison level: recognition failing inside the service."""


class LevelEngine:
    """One segment per whole second: "级别N。" (zh) or "level N." (its English), N = peak / 1000.

    A second at ``poison`` level makes it raise instead (the emulator then fails the task).
    """

    def __init__(self, *, poison: int | None = None) -> None:
        self.poison = poison

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
            if level == self.poison:
                raise EngineFailure(f"level {level} is poison")
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
