"""Where to cut long audio: the quietest half second of a stretch, found by its energy.

Only the stretch is decoded (the input is seeked to its start), resampled to 8 kHz mono, and
measured in 20 ms frames as it streams by (only one energy figure per frame is kept); the cut
goes in the middle of the quietest 0.5 s, the latest such place when several are equally quiet
(so parts stay as long as the provider allows).
"""

from __future__ import annotations

from contextlib import closing
from typing import TYPE_CHECKING, Any

from bucketscribe.media.transcode import Source, decoded_frames

if TYPE_CHECKING:
    import numpy as np

ANALYSIS_RATE = 8_000
FRAME_MS = 20
FRAME_SAMPLES = ANALYSIS_RATE * FRAME_MS // 1000
QUIET_SPAN_MS = 500


def quietest_point_ms(source: Source, start_ms: int, end_ms: int) -> int:
    """The middle of the quietest ``QUIET_SPAN_MS`` between ``start_ms`` and ``end_ms`` (in the
    input's time); ``end_ms`` when the stretch holds no audio (it lies past the end)."""
    import av
    import numpy as np

    resampler = av.AudioResampler(format="s16", layout="mono", rate=ANALYSIS_RATE)
    energy = _FrameEnergy(wanted=(end_ms - start_ms) * ANALYSIS_RATE // 1000)
    with closing(decoded_frames(source, start_ms=start_ms)) as frames:
        for decoded in frames:
            at_ms = float(decoded.pts * decoded.time_base) * 1000
            if at_ms >= end_ms or energy.full:
                break
            if at_ms + decoded.samples * 1000 / decoded.sample_rate <= start_ms:
                continue  # before the stretch (the seek lands on a keyframe at or before it)
            if energy.empty:
                # The first frame may begin a little before the stretch: not counted.
                energy.skip = max(0, round((start_ms - at_ms) * ANALYSIS_RATE / 1000))
            for frame in resampler.resample(decoded):
                energy.add(frame.to_ndarray().reshape(-1).astype(np.float32))
    if energy.empty:
        return end_ms
    return start_ms + _quietest_offset_ms(energy.per_frame())


class _FrameEnergy:
    """Mean square of each 20 ms frame of a stream of samples, up to ``wanted`` samples."""

    def __init__(self, *, wanted: int) -> None:
        self.wanted = wanted
        self.skip = 0
        self._seen = 0
        self._carry: Any = None
        self._energies: list[np.ndarray] = []

    @property
    def empty(self) -> bool:
        return not self._energies and self._carry is None

    @property
    def full(self) -> bool:
        return self._seen >= self.wanted

    def add(self, samples: np.ndarray) -> None:
        import numpy as np

        if self.skip:
            dropped, self.skip = min(self.skip, len(samples)), max(0, self.skip - len(samples))
            samples = samples[dropped:]
        samples = samples[: max(0, self.wanted - self._seen)]
        self._seen += len(samples)
        if self._carry is not None:
            samples = np.concatenate([self._carry, samples])
        whole = len(samples) // FRAME_SAMPLES * FRAME_SAMPLES
        if whole:
            self._energies.append((samples[:whole].reshape(-1, FRAME_SAMPLES) ** 2).mean(axis=1))
        self._carry = samples[whole:]

    def per_frame(self) -> np.ndarray:
        import numpy as np

        return np.concatenate(self._energies) if self._energies else np.zeros(0, np.float32)


def _quietest_offset_ms(energy: np.ndarray) -> int:
    import numpy as np

    count = len(energy)
    if count == 0:
        return 0
    span = min(QUIET_SPAN_MS // FRAME_MS, count)
    totals = np.convolve(energy, np.ones(span), mode="valid")
    # The latest of the quietest spans: parts as long as the limit allows.
    best = len(totals) - 1 - int(np.argmin(totals[::-1]))
    return best * FRAME_MS + span * FRAME_MS // 2
