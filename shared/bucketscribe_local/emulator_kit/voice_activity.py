"""Voice-activity detection for streamed audio: where utterances begin and end, by loudness.

A real-time recogniser answers each utterance as soon as the speaker pauses; this finds those
pauses in 16-bit mono PCM as it arrives. A 20 ms frame is speech when its RMS reaches
``VOICE_RMS`` (about -40 dBFS); an utterance ends after ``end_silence_ms`` without speech, keeping
a little audio either side so that soft onsets and endings are not clipped, and is cut anyway
once it reaches ``max_utterance_ms`` so that no recognition pass grows without bound. That cut
falls in the longest quiet stretch of the utterance's last seconds (a breath between phrases,
shorter than ``end_silence_ms``), or its quietest frame, not wherever the limit is reached: a
cut mid-word splits a sentence in two halves that are each heard wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_MS = 20
VOICE_RMS = 300.0
PRE_ROLL_MS = 100
TAIL_MS = 200
# Where a forced cut may fall: in the last this-much of an utterance at its longest.
CUT_LOOKBACK_MS = 5_000


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
        self._levels: list[tuple[int, float]] = []  # (frame start ms, RMS) of the open utterance

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
            self._look_at_frame(begin_ms, begin_ms + FRAME_MS, float(level), ended)
        return ended

    def close(self, received_ms: int) -> Utterance | None:
        """The input ended: the utterance in progress, if any, ends with it."""
        if self._start_ms is None:
            return None
        utterance = Utterance(self._start_ms, max(received_ms, self._start_ms))
        self._start_ms = None
        return utterance

    def _look_at_frame(self, begin_ms: int, end_ms: int, level: float, ended: list[Utterance]) -> None:
        voiced = level >= VOICE_RMS
        if voiced:
            if self._start_ms is None:
                self._start_ms = max(self._free_from_ms, begin_ms - PRE_ROLL_MS)
                self._levels = []
            self._voice_until_ms = end_ms
        elif self._start_ms is not None and end_ms - self._voice_until_ms >= self.end_silence_ms:
            self._end(min(end_ms, self._voice_until_ms + TAIL_MS), ended)
            return
        if self._start_ms is None:
            return
        self._levels.append((begin_ms, level))
        if end_ms - self._start_ms >= self.max_utterance_ms:
            cut, levels = self._quiet_cut(end_ms), self._levels
            self._end(cut, ended)
            if self._voice_until_ms > cut:  # the speaker goes on: so does the next utterance, from the cut
                self._start_ms = cut
                self._levels = [(at, rms) for at, rms in levels if at >= cut]

    def _quiet_cut(self, end_ms: int) -> int:
        """Where to cut an utterance at its longest: the middle of the longest run of quiet frames
        in its last ``CUT_LOOKBACK_MS``, else the end of its quietest frame (the latest of equals)."""
        recent = [(at, rms) for at, rms in self._levels if at >= end_ms - CUT_LOOKBACK_MS]
        best: tuple[int, int] | None = None  # (length, middle) of the longest quiet run
        run_start: int | None = None
        for at, rms in [*recent, (end_ms, VOICE_RMS)]:
            if rms < VOICE_RMS:
                run_start = at if run_start is None else run_start
                continue
            if run_start is not None:
                length = at - run_start
                if best is None or length > best[0]:
                    best = (length, run_start + length // 2 // FRAME_MS * FRAME_MS)
                run_start = None
        if best is not None:
            return best[1]
        quietest = min(rms for _, rms in recent)
        return max(at for at, rms in recent if rms == quietest) + FRAME_MS

    def _end(self, end_ms: int, ended: list[Utterance]) -> None:
        assert self._start_ms is not None
        ended.append(Utterance(self._start_ms, end_ms))
        self._free_from_ms = end_ms
        self._start_ms = None
        self._levels = []
