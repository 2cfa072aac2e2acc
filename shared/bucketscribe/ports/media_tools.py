"""The media-tools port: reading uploads and making audio for providers (``media/``, on PyAV).

What an upload holds is probed without holding it (range reads over a presigned URL); what a
provider is sent is made from it (a copy of its audio in another container, a re-encode, a part)
and stored beside it; real-time mode gets it decoded to 16 kHz PCM.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

from bucketscribe.domain.media_routing import SPEECH_SAMPLE_RATE, AudioTarget, MediaProbe
from bucketscribe.domain.upload import ObjectRef

# A recording split into its channels keeps the first two (a call: agent left, customer right).
SPLIT_CHANNELS = 2


class MediaError(ValueError):
    """The input has no audio that can be decoded; the message says why."""


class DecoderMissing(MediaError):
    """The input needs a decoder this deployment does not carry (PyAV)."""


class WrittenAudio(BaseModel):
    """A stretch of an upload's audio as written: where it really starts and ends (packet or
    frame boundaries, in the input's time) and how large it came out."""

    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)
    output_bytes: int = Field(ge=0)

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


class StoredAudio(WrittenAudio):
    """Audio made for a provider and stored: where, and which stretch of the upload it holds."""

    key: str


class SpeechPcm(BaseModel):
    """Decoded speech: 16-bit little-endian 16 kHz PCM, one byte string per channel kept."""

    tracks: list[bytes]
    source_channels: int = Field(ge=1)
    """How many channels the recording had (a stereo call split in two keeps both)."""

    @property
    def duration_ms(self) -> int:
        return len(self.tracks[0]) * 1000 // (2 * SPEECH_SAMPLE_RATE) if self.tracks else 0

    @property
    def dropped_channels(self) -> int:
        """Channels a split left out (beyond ``SPLIT_CHANNELS``); 0 for a downmix, which keeps all."""
        return self.source_channels - len(self.tracks) if len(self.tracks) > 1 else 0


class MediaTools(Protocol):
    """Reading uploads and making audio for providers (``media.bucket.BucketMedia``, on PyAV)."""

    @property
    def converts(self) -> bool:
        """Whether it can read what a header does not say and make audio (PyAV is there and loads);
        without it only a WAV's header is read and only 16 kHz 16-bit PCM WAV decodes."""
        ...

    def probe(self, source: ObjectRef) -> MediaProbe:
        """What the upload holds; ``MediaError`` when it has no decodable audio."""
        ...

    def quietest_ms(self, source: ObjectRef, start_ms: int, end_ms: int) -> int:
        """Where between ``start_ms`` and ``end_ms`` the upload is quietest (a place to cut)."""
        ...

    def write(
        self,
        source: ObjectRef,
        dest_key: str,
        target: AudioTarget,
        *,
        start_ms: int = 0,
        end_ms: int | None = None,
    ) -> StoredAudio:
        """Store that stretch of the upload's audio as ``target`` says, at ``dest_key``."""
        ...

    def speech(self, source: ObjectRef, key: str, *, split_channels: bool) -> SpeechPcm:
        """The object ``key`` beside ``source`` decoded to 16 kHz 16-bit PCM, downmixed or one
        track per channel; ``MediaError`` when it has no decodable audio, ``DecoderMissing`` when
        it needs a decoder that is not there."""
        ...
