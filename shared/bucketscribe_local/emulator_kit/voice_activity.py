"""Voice-activity detection for streamed audio: where utterances begin and end, by loudness.

A real-time recogniser answers each utterance as soon as the speaker pauses; this finds those
pauses in 16-bit mono PCM as it arrives. A 20 ms frame is speech when its RMS reaches
``VOICE_RMS`` (about -40 dBFS); an utterance ends after ``end_silence_ms`` without speech, keeping
a little audio either side so that soft onsets and endings are not clipped, and is cut anyway
once it reaches ``max_utterance_ms`` so that no recognition pass grows without bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_MS = 20
VOICE_RMS = 300.0
PRE_ROLL_MS = 100
TAIL_MS = 200


@dataclass(frozen=True)
class Utterance:
    start_ms: int
    end_ms: int


class VoiceActivity:
    def __init__(self, sample_rate: int, *, end_silence_ms: int, max_utterance_ms: int = 15_000) -> None:
        self.sample_rate = sample_rate
        self.end_silence_ms = end_silence_ms
        self.max_utterance_ms = max_utterance_ms
        self._frame_samples = max(sample_rate * FRAME_MS // 1000, 1)
        self._frames_seen = 0
        self._start_ms: int | None = None  # of the utterance in progress
        self._voice_until_ms = 0  # end of the last frame that was speech
        self._free_from_ms = 0  # where the next utterance may start (the end of the previous one)

    @property
    def open_start_ms(self) -> int | None:
        """Where the utterance still in progress began (None between utterances)."""
        return self._start_ms

    def scan(self, pcm: bytes | bytearray) -> list[Utterance]:
        """Look at the whole frames of ``pcm`` not seen yet; returns the utterances they ended."""
        usable = len(pcm) // 2 // self._frame_samples
        if usable <= self._frames_seen:
            return []
        first = self._frames_seen * self._frame_samples * 2
        samples = np.frombuffer(bytes(pcm[first : usable * self._frame_samples * 2]), dtype="<i2")
        frames = samples.reshape(-1, self._frame_samples).astype(np.float64)
        loudness = np.sqrt(np.mean(frames * frames, axis=1))
        ended: list[Utterance] = []
        for level in loudness:
            begin_ms = self._frames_seen * FRAME_MS
            self._frames_seen += 1
            self._look_at_frame(begin_ms, begin_ms + FRAME_MS, bool(level >= VOICE_RMS), ended)
        return ended

    def close(self, received_ms: int) -> Utterance | None:
        """The input ended: the utterance in progress, if any, ends with it."""
        if self._start_ms is None:
            return None
        utterance = Utterance(self._start_ms, max(received_ms, self._start_ms))
        self._start_ms = None
        return utterance

    def _look_at_frame(self, begin_ms: int, end_ms: int, voiced: bool, ended: list[Utterance]) -> None:
        if voiced:
            if self._start_ms is None:
                self._start_ms = max(self._free_from_ms, begin_ms - PRE_ROLL_MS)
            self._voice_until_ms = end_ms
        elif self._start_ms is not None and end_ms - self._voice_until_ms >= self.end_silence_ms:
            self._end(min(end_ms, self._voice_until_ms + TAIL_MS), ended)
            return
        if self._start_ms is not None and end_ms - self._start_ms >= self.max_utterance_ms:
            self._end(end_ms, ended)
            if voiced:  # the speaker goes on: so does the next utterance, from here
                self._start_ms = end_ms

    def _end(self, end_ms: int, ended: list[Utterance]) -> None:
        assert self._start_ms is not None
        ended.append(Utterance(self._start_ms, end_ms))
        self._free_from_ms = end_ms
        self._start_ms = None
