"""Adapter: an upload in the bucket → its speech track as 16 kHz mono Opus, stored beside the outputs.

Providers' best practice: a video's picture and a WAV's 44.1 kHz stereo only
cost transfer time and file-size limits. The extracted audio is written under
the output prefix (``<key>.speech.ogg``), where it can never trigger a job.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import BaseModel

from bucketscribe.model import ObjectRef
from bucketscribe.storage.base import ObjectStorage

OPUS_CONTENT_TYPE = "audio/ogg; codecs=opus"


class ExtractedAudio(BaseModel):
    key: str
    size: int
    duration_ms: int
    input_bytes: int


class SpeechTrackExtractor:
    def __init__(self, storage: ObjectStorage, *, bitrate: int = 24_000, workdir: Path | None = None) -> None:
        self._storage = storage
        self._bitrate = bitrate
        self._workdir = workdir

    def extract(self, source: ObjectRef, dest_key: str) -> ExtractedAudio:
        """Raises ``media.transcode.MediaError`` when the upload has no decodable audio."""
        from bucketscribe.media.transcode import to_speech_opus

        with tempfile.TemporaryDirectory(dir=self._workdir, prefix="bucketscribe-") as tmp:
            original = Path(tmp) / "original"
            speech = Path(tmp) / "speech.ogg"
            self._storage.download(source.bucket, source.key, original)
            result = to_speech_opus(original, speech, bitrate=self._bitrate)
            self._storage.upload(source.bucket, dest_key, speech, content_type=OPUS_CONTENT_TYPE)
        return ExtractedAudio(
            key=dest_key,
            size=result.output_bytes,
            duration_ms=result.duration_ms,
            input_bytes=result.input_bytes,
        )
