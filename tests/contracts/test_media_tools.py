"""The media-tools port's contract, as the pipeline uses it: the fake of the unit tests and the
PyAV adapter (``media.bucket.BucketMedia``) over S3 on moto server, reading uploads through
presigned URLs as it does in a function.

What the pipeline asks (``pipeline/steps``): ``probe`` (intake: what an upload holds, or
``MediaError``), ``quietest_ms`` (parts: where to cut inside a window), ``write`` (intake and parts:
a stretch of the upload stored for the provider, reporting where it really starts and ends and how
large it came out, stretches meeting without a gap) and ``speech`` (real-time mode: 16 kHz PCM, one
track per channel when split).

Where the fake legitimately differs, the test says so: it is told where an upload is quiet (it
decodes nothing to find out), and what it writes is a stand-in of the right size class, not audio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bucketscribe.clouds.aws.storage import S3Storage
from bucketscribe.domain.media_routing import AudioTarget
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.media.bucket import BucketMedia
from bucketscribe.media.transcode import probe
from bucketscribe.ports.media_tools import MediaError, MediaTools
from bucketscribe.ports.storage import ObjectStorage
from tests.audio import write_wav
from tests.fakes import FakeMediaTools, InMemoryStorage
from tests.integration.conftest import client

pytestmark = pytest.mark.integration

PCM_16K_MONO = AudioTarget(muxer="wav", extension="wav", codec="pcm_s16le", sample_rate=16000, channels=1)
# 6 s of a stereo 8 kHz call: tone, a one-second pause from 2.5 s, tone again.
CALL_MS = 6000
PAUSE_MS = (2500, 3500)


@dataclass
class MediaUnderTest:
    tools: MediaTools
    storage: ObjectStorage
    bucket: str
    # Tells the tools where an upload is quiet, where they are told rather than decode (the fake).
    knows_quiet_at: Callable[[int], None]


@pytest.fixture(params=["fake", "pyav"])
def media_tools(request: pytest.FixtureRequest, unique_name: str) -> MediaUnderTest:
    if request.param == "fake":
        storage = InMemoryStorage()
        fake = FakeMediaTools(storage)
        return MediaUnderTest(fake, storage, unique_name, fake.quiet_ms.append)
    endpoint = request.getfixturevalue("moto_endpoint")
    client("s3", endpoint).create_bucket(Bucket=unique_name)
    s3 = S3Storage(endpoint_url=endpoint)
    return MediaUnderTest(BucketMedia(s3), s3, unique_name, lambda _: None)


def upload(media: MediaUnderTest, key: str, body: bytes, content_type: str = "audio/wav") -> ObjectRef:
    """Store ``body`` and describe it as the intake step does (from the object's head)."""
    media.storage.put(media.bucket, key, body, content_type=content_type)
    info = media.storage.head(media.bucket, key)
    assert info is not None
    return ObjectRef(bucket=media.bucket, key=key, size=info.size, etag=info.etag, version_id=info.version_id)


def call_wav(tmp_path: Path) -> bytes:
    path = write_wav(
        tmp_path / "call.wav",
        seconds=CALL_MS / 1000,
        rate=8000,
        channels=2,
        tones=[(0, PAUSE_MS[0] / 1000), (PAUSE_MS[1] / 1000, CALL_MS / 1000)],
    )
    return path.read_bytes()


def test_the_tools_make_audio(media_tools: MediaUnderTest) -> None:
    """Both convert: the pipeline decides on it whether an upload can be made into what a provider takes."""
    assert media_tools.tools.converts is True


def test_a_probe_says_what_the_upload_holds(media_tools: MediaUnderTest, tmp_path: Path) -> None:
    ref = upload(media_tools, "incoming/call.wav", call_wav(tmp_path))
    found = media_tools.tools.probe(ref)
    assert (found.container, found.codec, found.channels, found.sample_rate) == ("wav", "pcm_s16le", 2, 8000)
    assert found.duration_ms == CALL_MS and found.has_video is False
    assert found.size_bytes == ref.size  # the upload's size, as the bucket says it


def test_a_probe_of_what_holds_no_audio_is_a_media_error(media_tools: MediaUnderTest) -> None:
    ref = upload(media_tools, "incoming/notes.wav", b"these are meeting notes, not a recording\n" * 20)
    with pytest.raises(MediaError):
        media_tools.tools.probe(ref)


def test_the_quietest_place_of_a_window_is_inside_its_pause(
    media_tools: MediaUnderTest, tmp_path: Path
) -> None:
    """The fake is told where the pause is (it decodes nothing); PyAV finds it."""
    ref = upload(media_tools, "incoming/call.wav", call_wav(tmp_path))
    media_tools.knows_quiet_at(sum(PAUSE_MS) // 2)
    cut = media_tools.tools.quietest_ms(ref, 1000, 5000)
    # The middle of the quietest half second: at least 250 ms inside the pause.
    assert PAUSE_MS[0] + 250 <= cut <= PAUSE_MS[1] - 250


def test_a_window_past_the_end_of_the_audio_is_cut_at_its_end(
    media_tools: MediaUnderTest, tmp_path: Path
) -> None:
    ref = upload(media_tools, "incoming/call.wav", call_wav(tmp_path))
    assert media_tools.tools.quietest_ms(ref, CALL_MS + 1000, CALL_MS + 5000) == CALL_MS + 5000


def test_consecutive_stretches_are_stored_and_meet_without_a_gap(
    media_tools: MediaUnderTest, tmp_path: Path
) -> None:
    """Parts of a long upload: each stored where asked, with the type of its container; the first
    ends where the second starts; the last runs to the end of the audio."""
    ref = upload(media_tools, "incoming/call.wav", call_wav(tmp_path))
    first = media_tools.tools.write(ref, "transcripts/call.wav.part1.wav", PCM_16K_MONO, end_ms=3000)
    second = media_tools.tools.write(ref, "transcripts/call.wav.part2.wav", PCM_16K_MONO, start_ms=3000)
    assert (first.key, second.key) == ("transcripts/call.wav.part1.wav", "transcripts/call.wav.part2.wav")
    assert (first.start_ms, first.end_ms, second.start_ms, second.end_ms) == (0, 3000, 3000, CALL_MS)
    for stored in (first, second):
        info = media_tools.storage.head(media_tools.bucket, stored.key)
        assert info is not None and info.content_type == "audio/wav"
        # 16 kHz 16-bit mono: 32 bytes a millisecond, and a header at most.
        assert 0 <= stored.output_bytes - 32 * stored.duration_ms <= 100


@pytest.mark.parametrize("media_tools", ["pyav"], indirect=True)
def test_what_is_written_is_that_stretch_of_audio_as_the_target_says(
    media_tools: MediaUnderTest, tmp_path: Path
) -> None:
    """Only PyAV writes audio: the fake stores a stand-in body (the unit tests never decode it)."""
    ref = upload(media_tools, "incoming/call.wav", call_wav(tmp_path))
    stored = media_tools.tools.write(ref, "transcripts/call.wav.speech.wav", PCM_16K_MONO, start_ms=1000)
    info = media_tools.storage.head(media_tools.bucket, stored.key)
    assert info is not None and info.size == stored.output_bytes
    made = tmp_path / "made.wav"
    media_tools.storage.download(media_tools.bucket, stored.key, made)
    written = probe(made)
    assert (written.codec, written.sample_rate, written.channels) == ("pcm_s16le", 16000, 1)
    assert written.duration_ms == stored.duration_ms == CALL_MS - 1000


def test_speech_is_16_khz_pcm_downmixed_or_one_track_per_channel(
    media_tools: MediaUnderTest, tmp_path: Path
) -> None:
    ref = upload(media_tools, "incoming/call.wav", call_wav(tmp_path))
    mixed = media_tools.tools.speech(ref, ref.key, split_channels=False)
    split = media_tools.tools.speech(ref, ref.key, split_channels=True)
    assert (len(mixed.tracks), mixed.source_channels, mixed.dropped_channels) == (1, 2, 0)
    assert (len(split.tracks), split.source_channels, split.dropped_channels) == (2, 2, 0)
    for speech in (mixed, split):
        assert speech.duration_ms == CALL_MS
        assert {len(track) for track in speech.tracks} == {32 * CALL_MS}


def test_speech_of_what_holds_no_audio_is_a_media_error(media_tools: MediaUnderTest) -> None:
    ref = upload(media_tools, "incoming/notes.wav", b"these are meeting notes, not a recording\n" * 20)
    with pytest.raises(MediaError):
        media_tools.tools.speech(ref, ref.key, split_channels=False)
