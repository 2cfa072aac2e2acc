"""Where to cut long audio: the quietest half second of a stretch, found by its energy.

Only the stretch is decoded (the input is seeked to its start), resampled to 8 kHz mono, and
measured in 20 ms frames; the cut goes in the middle of the quietest 0.5 s, the latest such
place when several are equally quiet (so parts stay as long as the provider allows).
"""

from __future__ import annotations

from contextlib import closing
from typing import TYPE_CHECKING

from bucketscribe.media.transcode import Source, decoded_frames

if TYPE_CHECKING:
    import numpy as np

ANALYSIS_RATE = 8_000
FRAME_MS = 20
QUIET_SPAN_MS = 500


def quietest_point_ms(source: Source, start_ms: int, end_ms: int) -> int:
    """The middle of the quietest ``QUIET_SPAN_MS`` between ``start_ms`` and ``end_ms`` (in the
    input's time); ``end_ms`` when the stretch holds no audio (it lies past the end)."""
    import av
    import numpy as np

    resampler = av.AudioResampler(format="s16", layout="mono", rate=ANALYSIS_RATE)
    chunks: list[np.ndarray] = []
    first_ms: float | None = None
    with closing(decoded_frames(source, start_ms=start_ms)) as frames:
        for decoded in frames:
            at_ms = float(decoded.pts * decoded.time_base) * 1000
            if at_ms >= end_ms:
                break
            if at_ms + decoded.samples * 1000 / decoded.sample_rate <= start_ms:
                continue  # before the stretch (the seek lands on a keyframe at or before it)
            if first_ms is None:
                first_ms = at_ms
            chunks.extend(frame.to_ndarray().reshape(-1) for frame in resampler.resample(decoded))
    if first_ms is None or not chunks:
        return end_ms
    audio = np.concatenate(chunks).astype(np.float32)
    # Only the stretch itself: the first decoded frame may begin a little before it.
    skip = max(0, round((start_ms - first_ms) * ANALYSIS_RATE / 1000))
    audio = audio[skip : skip + (end_ms - start_ms) * ANALYSIS_RATE // 1000]
    return start_ms + _quietest_offset_ms(audio) if len(audio) else end_ms


def _quietest_offset_ms(audio: np.ndarray) -> int:
    import numpy as np

    frame = ANALYSIS_RATE * FRAME_MS // 1000
    count = len(audio) // frame
    if count == 0:
        return 0
    energy = (audio[: count * frame].reshape(count, frame) ** 2).mean(axis=1)
    span = min(QUIET_SPAN_MS // FRAME_MS, count)
    totals = np.convolve(energy, np.ones(span), mode="valid")
    # The latest of the quietest spans: parts as long as the limit allows.
    best = len(totals) - 1 - int(np.argmin(totals[::-1]))
    return best * FRAME_MS + span * FRAME_MS // 2
