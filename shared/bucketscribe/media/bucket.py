"""Adapter: media objects in the bucket, read and written with PyAV.

Uploads are read over presigned URLs, so PyAV fetches only what it needs with range requests
(a probe reads the header, and the index at the end where a file keeps it there; a cut point
search decodes a few minutes) and the recording never sits in memory or on disk whole. What is
made for a provider (a copy or re-encode of the audio, or one part of it) goes through one local
temporary file, then into the bucket under the output prefix, where it can never start a job.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bucketscribe.domain.media_routing import AudioTarget, MediaProbe
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.media.silence import quietest_point_ms
from bucketscribe.media.transcode import decode_pcm16, probe_media, write_audio
from bucketscribe.ports.media_tools import DecoderMissing, SpeechPcm, StoredAudio
from bucketscribe.ports.storage import ObjectStorage

# Long enough for the slowest read of a large upload; the URL never leaves this process.
READ_URL_EXPIRY_S = 3600


class BucketMedia:
    def __init__(
        self, storage: ObjectStorage, *, workdir: Path | None = None, converts: bool | None = True
    ) -> None:
        """``converts``: whether PyAV and numpy can do the work; ``None`` finds out at the first
        upload that asks (importing them costs a cold start that may never need them)."""
        self._storage = storage
        self._workdir = workdir
        self._converts = converts

    @property
    def converts(self) -> bool:
        if self._converts is None:
            self._converts = _media_libraries_load()
        return self._converts

    def _url(self, source: ObjectRef) -> str:
        return self._storage.presign_get(
            source.bucket, source.key, expires_s=READ_URL_EXPIRY_S, version_id=source.version_id
        )

    def probe(self, source: ObjectRef) -> MediaProbe:
        """Raises ``media.transcode.MediaError`` when the upload has no decodable audio."""
        return probe_media(self._url(source), size_bytes=source.size or 0)

    def quietest_ms(self, source: ObjectRef, start_ms: int, end_ms: int) -> int:
        return quietest_point_ms(self._url(source), start_ms, end_ms)

    def write(
        self,
        source: ObjectRef,
        dest_key: str,
        target: AudioTarget,
        *,
        start_ms: int = 0,
        end_ms: int | None = None,
    ) -> StoredAudio:
        """Store the upload's audio from ``start_ms`` to ``end_ms`` as ``target`` at ``dest_key``."""
        with tempfile.TemporaryDirectory(dir=self._workdir, prefix="bucketscribe-") as tmp:
            made = Path(tmp) / f"audio.{target.extension}"
            written = write_audio(self._url(source), made, target, start_ms=start_ms, end_ms=end_ms)
            self._storage.upload(source.bucket, dest_key, made, content_type=target.content_type)
        return StoredAudio(key=dest_key, **written.model_dump())

    def speech(self, source: ObjectRef, key: str, *, split_channels: bool) -> SpeechPcm:
        """The object ``key`` (the upload, or the audio made from it) as 16 kHz PCM: downloaded
        once to a temporary file (a stream decodes it from start to end anyway)."""
        with tempfile.TemporaryDirectory(dir=self._workdir, prefix="bucketscribe-") as tmp:
            local = Path(tmp) / "audio"
            self._storage.download(source.bucket, key, local)
            try:
                return decode_pcm16(local, split_channels=split_channels)
            except ImportError as missing:  # only a 16 kHz 16-bit PCM WAV decodes without PyAV
                raise DecoderMissing(str(missing)) from missing


def _media_libraries_load() -> bool:
    """Whether PyAV and numpy load here: present in the package is not enough (a wheel built for
    another CPU or C library fails at import), and then uploads that need converting are refused
    with the reason rather than failing one by one."""
    try:
        import av  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as exc:  # also a wheel's shared library that does not load
        from bucketscribe.observability import logger

        logger.error(
            "PyAV or numpy does not load: uploads that need converting are refused",
            extra={"error": f"{type(exc).__name__}: {exc}"},
        )
        return False
    return True
