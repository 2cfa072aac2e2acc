"""Making what a provider is sent, with PyAV on real files and over real HTTP: stretches copied or
re-encoded that meet without a gap, a video's audio copied without re-encoding, the quiet place
to cut, a probe that reads only the head of a large object, and the bucket adapter over presigned
S3 URLs (moto server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from aiohttp import web
from bucketscribe_local.http_thread import BackgroundHttpServer
from bucketscribe_local.samples import sample

from bucketscribe.clouds.aws.storage import S3Storage
from bucketscribe.domain.media_routing import AudioTarget
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.media.bucket import BucketMedia
from bucketscribe.media.silence import quietest_point_ms
from bucketscribe.media.transcode import probe, write_audio
from tests.audio import sparse_silent_wav, write_wav
from tests.integration.conftest import client

pytestmark = pytest.mark.integration

# What the router writes for parts of a 16 kHz WAV (the same samples) and for a re-encode.
SAME_PCM = AudioTarget(muxer="wav", extension="wav", codec="pcm_s16le", sample_rate=16000, channels=1)
PCM_8K = AudioTarget(muxer="wav", extension="wav", codec="pcm_s16le", sample_rate=8000, channels=1)
M4A_COPY = AudioTarget(muxer="ipod", extension="m4a")


def samples_of(path: Path | str) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])


@pytest.mark.parametrize("target", [SAME_PCM, PCM_8K], ids=["same-samples", "re-encoded"])
def test_consecutive_stretches_meet_without_a_gap_or_an_overlap(tmp_path: Path, target: AudioTarget) -> None:
    source = write_wav(tmp_path / "in.wav", seconds=30, rate=16000, tones=[(2, 9), (12, 29)])
    cuts = [(0, 10_000), (10_000, 20_000), (20_000, None)]
    written = [
        write_audio(source, tmp_path / f"part{i}.wav", target, start_ms=start, end_ms=end)
        for i, (start, end) in enumerate(cuts)
    ]
    # Cut to the sample: each stretch starts where the one before ends.
    assert [(w.start_ms, w.end_ms) for w in written] == [(0, 10_000), (10_000, 20_000), (20_000, 30_000)]
    parts = [samples_of(tmp_path / f"part{i}.wav") for i in range(3)]
    if target.sample_rate == 16000:
        # The parts put together are the original, sample for sample.
        assert np.array_equal(np.concatenate(parts), samples_of(source))
    else:
        assert [len(p) for p in parts] == [10 * 8000] * 3
        assert probe(tmp_path / "part1.wav").sample_rate == 8000


def test_the_audio_of_a_video_is_copied_into_m4a_not_re_encoded(tmp_path: Path) -> None:
    video = sample("demo_video.mp4").path
    written = write_audio(video, tmp_path / "audio.m4a", M4A_COPY)
    before, after = probe(video), probe(tmp_path / "audio.m4a")
    assert (after.codec, after.has_video, after.container) == ("aac", False, "mp4")
    assert abs(after.duration_ms - before.duration_ms) <= 100 and written.start_ms == 0
    # The same AAC packets decode to the same samples: nothing was re-encoded.
    original, copied = samples_of(video), samples_of(tmp_path / "audio.m4a")
    assert len(copied) == len(original) and np.array_equal(original, copied)
    assert written.output_bytes < video.stat().st_size  # the picture is left out


def test_the_cut_goes_in_the_quiet_place(tmp_path: Path) -> None:
    # Tone everywhere but 7.3–8.3 s (and a shorter, quieter-looking gap that is too short).
    source = write_wav(tmp_path / "in.wav", seconds=20, rate=16000, tones=[(0, 5.1), (5.2, 7.3), (8.3, 20)])
    cut = quietest_point_ms(source, 4_000, 12_000)
    assert 7_300 + 250 <= cut <= 8_300 - 250
    # Silence everywhere: the latest place, so parts stay as long as they may.
    silent = write_wav(tmp_path / "silent.wav", seconds=20, rate=16000)
    assert 11_000 <= quietest_point_ms(silent, 4_000, 12_000) <= 12_000
    # A stretch past the end holds no audio: cut at its end.
    assert quietest_point_ms(silent, 30_000, 40_000) == 40_000


@pytest.fixture
def counting_server(tmp_path: Path) -> Iterator[tuple[str, list[int]]]:
    """Serves tmp_path over HTTP with range requests, counting the bytes it sends."""
    sent: list[int] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        path = tmp_path / request.match_info["name"]
        size = path.stat().st_size
        start = request.http_range.start or 0
        stop = size if request.http_range.stop is None else min(request.http_range.stop, size)
        response = web.StreamResponse(status=206 if request.http_range.start is not None else 200)
        response.headers["Accept-Ranges"] = "bytes"
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        response.content_length = stop - start
        await response.prepare(request)
        with path.open("rb") as body:
            body.seek(start)
            while start < stop:
                chunk = body.read(min(65536, stop - start))
                try:
                    await response.write(chunk)
                except ConnectionError:
                    break
                sent.append(len(chunk))
                start += len(chunk)
        return response

    app = web.Application()
    app.router.add_get("/{name}", serve)
    with BackgroundHttpServer(app) as server:
        yield server.url, sent


def test_a_probe_over_http_reads_the_head_not_the_recording(
    tmp_path: Path, counting_server: tuple[str, list[int]]
) -> None:
    url, sent = counting_server
    day = sparse_silent_wav(tmp_path / "day.wav", seconds=24 * 3600, rate=8000)  # 1.4 GB, no disk
    info = probe(f"{url}/day.wav")
    assert (info.container, info.codec, info.duration_ms) == ("wav", "pcm_s16le", 24 * 3600 * 1000)
    # A range request for the head; what else arrives is what the sockets buffer before ffmpeg
    # closes an open-ended request: bounded, whatever the length of the recording.
    assert sum(sent) < 32 * 2**20, f"{sum(sent):,} of {day.stat().st_size:,} bytes read to probe"
    sent.clear()
    # A cut point 20 hours in decodes the minute asked for, fetched with a range request there.
    quietest_point_ms(f"{url}/day.wav", 72_000_000, 72_060_000)
    assert sum(sent) < 32 * 2**20, f"{sum(sent):,} bytes read to find a cut"


def test_the_bucket_adapter_reads_and_writes_through_presigned_urls(aws: str) -> None:
    client("s3", aws).create_bucket(Bucket="recordings")
    storage = S3Storage(endpoint_url=aws)
    video = sample("demo_video.mp4").path
    storage.put("recordings", "incoming/demo.mp4", video.read_bytes(), content_type="video/mp4")
    info = storage.head("recordings", "incoming/demo.mp4")
    assert info is not None
    ref = ObjectRef(bucket="recordings", key="incoming/demo.mp4", etag=info.etag, size=info.size)
    tools = BucketMedia(storage)

    found = tools.probe(ref)
    assert (found.container, found.codec, found.channels, found.sample_rate) == ("mp4", "aac", 1, 16000)
    assert found.has_video and found.size_bytes == info.size and found.duration_ms

    stored = tools.write(ref, "transcripts/demo.mp4.speech.m4a", M4A_COPY)
    made = storage.head("recordings", "transcripts/demo.mp4.speech.m4a")
    assert made is not None and made.size == stored.output_bytes and made.content_type == "audio/mp4"
    copy = ObjectRef(bucket="recordings", key="transcripts/demo.mp4.speech.m4a", size=made.size)
    again = tools.probe(copy)
    assert (again.codec, again.has_video) == ("aac", False)
    # The cut search decodes over the presigned URL too (the place itself is tested above).
    assert 1_000 <= tools.quietest_ms(ref, 1_000, 5_000) <= 5_000
