"""Who is speaking: the voice of each segment, and whether outputs name the voices."""

from __future__ import annotations

from bucketscribe.domain.profile import RenderOptions
from bucketscribe.domain.transcript import Segment, Transcript


def voice_of(segment: Segment, transcript: Transcript) -> str | None:
    """The name of a segment's voice: its speaker, else its channel when there are several."""
    if segment.speaker is not None and segment.speaker.strip():
        return " ".join(segment.speaker.split())
    if segment.channel is not None and (transcript.channels or 0) > 1:
        # Channels are 0-based in the model (0 = left); people count from 1.
        return f"Channel {segment.channel + 1}"
    return None


def distinct_voices(transcript: Transcript) -> set[str]:
    return {voice for segment in transcript.segments if (voice := voice_of(segment, transcript))}


def shows_labels(transcript: Transcript, options: RenderOptions) -> bool:
    """Whether outputs name the speakers: only when asked to and when there are two or more.

    A label on a one-voice transcript says nothing true ("Speaker 1:" when nobody else
    speaks); ``speaker_labels: false`` leaves names out of every format alike.
    """
    return options.speaker_labels and len(distinct_voices(transcript)) > 1
