"""Reading and writing audio with PyAV: describe a file, and write a stretch of its audio as a
provider wants it — the packets copied into another container, or decoded and encoded again.

Everything streams: a frame or a packet at a time from the input (a path, bytes, or an HTTP(S)
URL such as a presigned object URL, read with range requests) to a file, so memory does not grow
with the length of the recording. PyAV (``av``) is imported inside the functions so modules that
import this one stay cheap to load.
"""

from __future__ import annotations

import io
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from bucketscribe.domain.media_routing import SPEECH_SAMPLE_RATE, AudioTarget, MediaProbe
from bucketscribe.ports.media_tools import SPLIT_CHANNELS, MediaError, SpeechPcm, WrittenAudio

if TYPE_CHECKING:
    from av.container import InputContainer, OutputContainer

DEFAULT_BITRATE = 24_000
# ffmpeg picks its ANSI-art demuxer for any file named .txt/.ans/…: that is text, not media.
_TEXT_DEMUXERS = frozenset({"tty"})
# ffmpeg's demuxer names (the first of a comma-separated list) → routing's container families.
_FAMILIES = {"mov": "mp4", "aac": "adts", "matroska": "matroska", "wav": "wav", "w64": "wav"}
# The WAV demuxer's packets are 4 KB (0.13 s of 16 kHz mono) unless told: 64 KB packets make a
# long PCM stretch 16 times fewer decode/encode calls. Other demuxers ignore the option.
_DEMUXER_OPTIONS = {"max_size": str(64 * 1024)}
# Presigned URLs are read with bounded range requests, small at first (a probe reads a header)
# and growing while a stretch is streamed; a dropped connection is resumed where it broke.
_HTTP_OPTIONS = {
    "initial_request_size": str(64 * 1024),
    "max_request_size": str(8 * 1024 * 1024),
    "rw_timeout": "60000000",  # µs
    "reconnect": "1",
    "reconnect_on_network_error": "1",
    "reconnect_delay_max": "10",
}

Source = Path | bytes | str
"""A file, its bytes, or a URL (``http(s)://`` or ``file:``)."""


class MediaInfo(BaseModel):
    duration_ms: int = Field(ge=0)
    channels: int = Field(ge=0)
    sample_rate: int = Field(ge=0)
    """The decoder's rate; for Opus that is always 48000, whatever rate went into the encoder."""
    has_audio: bool
    has_video: bool
    codec: str | None = None
    """The first audio stream's codec (``opus``, ``aac``, ``pcm_s16le``…), None without audio."""
    container: str | None = None
    """The container family (``wav``, ``mp4``, ``ogg``, ``matroska``…; see ``media.routing``)."""
    audio_bit_rate: int | None = None


class TranscodeResult(BaseModel):
    duration_ms: int = Field(ge=0)
    input_bytes: int = Field(ge=0)
    output_bytes: int = Field(ge=0)
    sample_rate: int = SPEECH_SAMPLE_RATE
    channels: int = 1
    bitrate: int

    @property
    def ratio(self) -> float:
        """How many times smaller the output is than the input."""
        return self.input_bytes / max(self.output_bytes, 1)


def probe(source: Source) -> MediaInfo:
    """Describe a media file's streams and length, without decoding it where the container knows."""
    import av

    try:
        with _open_input(source) as container:
            has_video = bool(container.streams.video)
            family = _family(container)
            if not container.streams.audio:
                duration_ms = _container_duration_ms(container, None) or 0
                return MediaInfo(
                    duration_ms=duration_ms,
                    channels=0,
                    sample_rate=0,
                    has_audio=False,
                    has_video=has_video,
                    container=family,
                )
            audio = container.streams.audio[0]
            known_ms = _container_duration_ms(container, audio)
            context = audio.codec_context
            return MediaInfo(
                duration_ms=known_ms if known_ms is not None else _decoded_duration_ms(container, audio),
                channels=context.channels,
                sample_rate=context.sample_rate or 0,
                has_audio=True,
                has_video=has_video,
                codec=context.codec.canonical_name,  # "mp3", not the decoder's "mp3float"
                container=family,
                audio_bit_rate=context.bit_rate or None,
            )
    except av.FFmpegError as error:
        if _unreadable(error):
            raise
        raise MediaError(f"cannot read the media file: {error}") from error


def probe_media(source: Source, *, size_bytes: int) -> MediaProbe:
    """What routing needs to know of a recording (``media.routing``); ``MediaError`` when it has
    no audio stream."""
    info = probe(source)
    if not info.has_audio:
        raise MediaError("the file has no audio stream")
    return MediaProbe(
        container=info.container or "unknown",
        codec=info.codec,
        channels=info.channels,
        sample_rate=info.sample_rate,
        duration_ms=info.duration_ms,
        size_bytes=size_bytes,
        has_video=info.has_video,
        audio_bit_rate=info.audio_bit_rate,
    )


def to_speech_opus(source: Path | bytes, dest: Path, *, bitrate: int = DEFAULT_BITRATE) -> TranscodeResult:
    """Write the first audio track of ``source`` (audio or video) to ``dest`` as 16 kHz mono Ogg Opus.

    ``dest`` appears only when the whole file was written (a temporary name is renamed).
    Raises ``MediaError`` when the input has no audio stream or nothing in it decodes.
    """
    target = AudioTarget(
        muxer="ogg",
        extension="ogg",
        codec="libopus",
        sample_rate=SPEECH_SAMPLE_RATE,
        channels=1,
        bit_rate=bitrate,
    )
    written = write_audio(source, dest, target)
    return TranscodeResult(
        duration_ms=written.duration_ms,
        input_bytes=len(source) if isinstance(source, bytes) else source.stat().st_size,
        output_bytes=written.output_bytes,
        bitrate=bitrate,
    )


def write_audio(
    source: Source, dest: Path, target: AudioTarget, *, start_ms: int = 0, end_ms: int | None = None
) -> WrittenAudio:
    """Write the first audio track of ``source`` from ``start_ms`` to ``end_ms`` (the end: None)
    to ``dest`` as ``target`` says: its packets copied (``target.codec`` None) or re-encoded.

    A stretch starts at the first packet (or decoded frame) at or after ``start_ms`` and stops
    before the first at or after ``end_ms``, so consecutive stretches meet without a gap or an
    overlap. ``dest`` appears only when the whole file was written; ``MediaError`` when the input
    has no audio stream or nothing in it decodes.
    """
    import av

    partial = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        with _open_input(source) as container:
            if not container.streams.audio:
                raise MediaError("the file has no audio stream")
            audio = container.streams.audio[0]
            window = _Window(start_ms, end_ms)
            if start_ms > 0:
                container.seek(start_ms * 1000, backward=True)  # µs, to the keyframe at or before
            with av.open(str(partial), mode="w", format=target.muxer) as output:
                if target.codec is None:
                    span = _copy_packets(container, audio, output, window)
                else:
                    span = _encode_frames(container, audio, output, target, window)
        if span is None:
            raise MediaError("the audio stream holds no decodable samples in that stretch")
        partial.replace(dest)
    except av.FFmpegError as error:
        if _unreadable(error):
            raise
        raise MediaError(f"cannot write the audio: {error}") from error
    finally:
        partial.unlink(missing_ok=True)
    return WrittenAudio(start_ms=span[0], end_ms=span[1], output_bytes=dest.stat().st_size)


@dataclass(frozen=True)
class _Window:
    start_ms: int
    end_ms: int | None

    def before(self, at_ms: float) -> bool:
        return self.start_ms > 0 and at_ms < self.start_ms

    def past(self, at_ms: float) -> bool:
        return self.end_ms is not None and at_ms >= self.end_ms


def _copy_packets(
    container: InputContainer, audio: Any, output: OutputContainer, window: _Window
) -> tuple[int, int] | None:
    """Copy the window's packets of ``audio`` into ``output``, its time 0 being the window's start
    (so a packet's time in the part is exactly its time in the upload less the start)."""
    stream = output.add_stream_from_template(audio)
    time_base = audio.time_base
    shift = round(window.start_ms / 1000 / time_base)
    copied = False
    end_ms = 0.0
    for packet in container.demux(audio):
        if packet.pts is None or packet.size == 0:
            continue  # the flush packet, or one the demuxer could not time
        at_ms = float(packet.pts * time_base) * 1000
        if window.before(at_ms):
            continue
        if window.past(at_ms):
            break
        copied = True
        end_ms = at_ms + float((packet.duration or 0) * time_base) * 1000
        packet.pts -= shift
        packet.dts = packet.pts if packet.dts is None else packet.dts - shift
        packet.stream = stream
        output.mux(packet)
    return (window.start_ms, max(window.start_ms, round(end_ms))) if copied else None


def _encode_frames(
    container: InputContainer, audio: Any, output: OutputContainer, target: AudioTarget, window: _Window
) -> tuple[int, int] | None:
    """Decode the window's frames of ``audio``, resample and encode them into ``output``."""
    import av

    rate = target.sample_rate or SPEECH_SAMPLE_RATE
    layout = _layout(target.channels or 1)
    opus = target.codec == "libopus"
    stream: Any = output.add_stream(str(target.codec), rate=rate, layout=layout)
    # libopus takes whole 20 ms frames of s16; PCM any number of samples, in its own format.
    resampler = av.AudioResampler(
        format="s16" if opus else stream.codec_context.format.name,
        layout=layout,
        rate=rate,
        frame_size=rate // 50 if opus else None,
    )
    if target.bit_rate:
        stream.bit_rate = target.bit_rate
    if opus:
        # voip mode favours intelligibility of speech over fidelity of music.
        stream.codec_context.options = {"application": "voip"}
    time_base = Fraction(1, rate)
    written = 0
    first_ms: float | None = None
    end_ms = 0.0

    def encode(frame: Any) -> None:
        nonlocal written
        # Number frames from zero: the stretch may start anywhere in the input.
        frame.pts, frame.time_base = written, time_base
        written += frame.samples
        output.mux(stream.encode(frame))

    for decoded in _decoded_frames(container, audio):
        at_ms = float(decoded.pts * decoded.time_base) * 1000 if decoded.pts is not None else end_ms
        if window.past(at_ms):
            break
        kept = _trimmed(decoded, at_ms, window)
        if kept is None:
            continue
        frame, at_ms = kept
        if first_ms is None:
            first_ms = at_ms
        end_ms = at_ms + frame.samples * 1000 / frame.sample_rate
        for out in resampler.resample(frame):
            encode(out)
    for out in resampler.resample(None):
        encode(out)
    output.mux(stream.encode(None))
    if first_ms is None or written == 0:
        return None
    return max(0, round(first_ms)), round(end_ms)


def _trimmed(frame: Any, at_ms: float, window: _Window) -> tuple[Any, float] | None:
    """The part of a decoded frame inside the window, to the sample: the frame that straddles a
    cut is split there, so consecutive stretches meet exactly (None: nothing of it is inside)."""
    import av

    rate = frame.sample_rate
    skip = max(0, round((window.start_ms - at_ms) * rate / 1000)) if window.start_ms > 0 else 0
    keep = frame.samples - skip
    if window.end_ms is not None:
        keep = min(keep, round((window.end_ms - at_ms) * rate / 1000) - skip)
    if keep <= 0:
        return None
    if skip == 0 and keep == frame.samples:
        return frame, at_ms
    samples = frame.to_ndarray()
    planar = frame.format.is_planar
    cut = (
        samples[:, skip : skip + keep]
        if planar
        else samples[:, skip * len(frame.layout.channels) :][:, : keep * len(frame.layout.channels)]
    )
    part = av.AudioFrame.from_ndarray(cut, format=frame.format.name, layout=frame.layout.name)
    part.sample_rate = rate
    return part, at_ms + skip * 1000 / rate


def _layout(channels: int) -> str:
    """ffmpeg's default layout for a channel count (av_channel_layout_default)."""
    try:
        return _LAYOUTS[channels]
    except KeyError:
        raise MediaError(f"cannot write {channels} channels") from None


_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def _decoded_frames(container: InputContainer, audio: Any) -> Iterator[Any]:
    """Decoded frames of one stream, skipping damaged packets the way ffmpeg's CLI does."""
    import av

    for packet in container.demux(audio):
        try:
            yield from packet.decode()
        except av.InvalidDataError:
            continue


def decoded_frames(source: Source, *, start_ms: int = 0) -> Generator[Any, None, None]:
    """The first audio track's decoded frames from ``start_ms`` on (the caller stops when it has
    enough); ``MediaError`` when there is no audio stream."""
    with _open_input(source) as container:
        if not container.streams.audio:
            raise MediaError("the file has no audio stream")
        if start_ms > 0:
            container.seek(start_ms * 1000, backward=True)
        yield from _decoded_frames(container, container.streams.audio[0])


def _open_input(source: Source) -> InputContainer:
    import av

    if isinstance(source, Path) and not source.is_file():
        raise FileNotFoundError(source)
    target: str | io.BytesIO = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    remote = isinstance(source, str) and source.startswith(("http://", "https://"))
    try:
        options = {**_DEMUXER_OPTIONS, **(_HTTP_OPTIONS if remote else {})}
        container = av.open(target, mode="r", metadata_errors="ignore", options=options)
    except av.FFmpegError as error:
        if _unreadable(error):
            raise
        raise MediaError(f"not a media file that can be decoded: {error}") from error
    if container.format.name in _TEXT_DEMUXERS:
        container.close()
        raise MediaError("a text file, not audio or video")
    return container


def _unreadable(error: Exception) -> bool:
    """Reading failed (the network, an HTTP error status, a missing file), which says nothing
    about the media: raised as it is, for the caller to retry, never as a ``MediaError``."""
    import av

    return isinstance(error, av.HTTPError | av.HTTPClientError | OSError)


def _family(container: InputContainer) -> str:
    name = container.format.name.split(",")[0]
    return _FAMILIES.get(name, name)


def _container_duration_ms(container: InputContainer, audio: Any) -> int | None:
    if audio is not None and audio.duration is not None and audio.time_base is not None:
        return round(float(audio.duration * audio.time_base) * 1000)
    if container.duration is not None:
        return round(container.duration / 1000)  # container.duration is in microseconds
    return None


def _decoded_duration_ms(container: InputContainer, audio: Any) -> int:
    # Raw streams (ADTS AAC, some MP3s) carry no length: count the samples instead.
    samples = sum(frame.samples for frame in _decoded_frames(container, audio))
    rate = audio.codec_context.sample_rate or 1
    return round(samples * 1000 / rate)


# A split recording is a call: two sides, agent and customer, on the first two channels (left and
# right, in every ffmpeg layout). More channels keep those two and drop the rest, rather than
# refuse the upload: a call recorder's extra channels (a silent or mixed track) carry no third
# speaker to label, and each stream is paid for, so a 5.1 file must not become six. Refusing
# would fail a recording whose two sides are there; what was dropped is said to the user
# (``SpeechPcm.dropped_channels``: a console warning, a transcript warning). A 5.1 film is no
# call: its dialogue is in the centre, which a mixed stream keeps and a split one drops.
# The standard-library WAV path reads this many frames at a time (a second of 16 kHz audio).
_WAV_CHUNK_FRAMES = SPEECH_SAMPLE_RATE


def decode_pcm16(source: Path, *, split_channels: bool = False) -> SpeechPcm:
    """The first audio track of the file ``source`` as 16 kHz 16-bit PCM: downmixed to one
    track, or with ``split_channels`` one track for each of the first ``SPLIT_CHANNELS``
    channels (a stereo call: agent left, customer right).

    The file is read as it is decoded, never held whole beside its PCM. A 16 kHz 16-bit PCM WAV
    is read with the standard library (no decoder is loaded); anything else goes through PyAV.
    Raises ``MediaError`` when nothing decodes.
    """
    plain = _plain_wav(source, split_channels=split_channels)
    if plain is not None:
        return plain
    import av

    tracks: list[bytearray] = []
    channels = 0
    try:
        with _open_input(source) as container:
            if not container.streams.audio:
                raise MediaError("the file has no audio stream")
            audio = container.streams.audio[0]
            channels = max(audio.codec_context.channels, 1)
            keep = min(channels, SPLIT_CHANNELS) if split_channels else 1
            # s16p keeps each channel in its own plane (the first ``keep`` are taken: a plane
            # is a channel as recorded, not a remix); "mono" lets swresample do the downmix.
            layout = audio.codec_context.layout if keep > 1 else "mono"
            resampler = av.AudioResampler(format="s16p", layout=layout, rate=SPEECH_SAMPLE_RATE)
            tracks = [bytearray() for _ in range(keep)]
            for decoded in _decoded_frames(container, audio):
                _append_planes(resampler.resample(decoded), tracks)
            _append_planes(resampler.resample(None), tracks)
    except av.FFmpegError as error:
        raise MediaError(f"cannot decode the audio: {error}") from error
    if not tracks or not tracks[0]:
        raise MediaError("the audio stream holds no decodable samples")
    return SpeechPcm(tracks=[bytes(t) for t in tracks], source_channels=channels)


def _append_planes(frames: list[Any], tracks: list[bytearray]) -> None:
    for frame in frames:
        size = frame.samples * 2  # a plane may be padded past its samples
        for track, plane in zip(tracks, frame.planes, strict=False):
            track += memoryview(plane)[:size]


def _plain_wav(path: Path, *, split_channels: bool) -> SpeechPcm | None:
    """A 16 kHz 16-bit PCM WAV, read from its file without a decoder; None for anything else."""
    import array
    import wave

    try:
        with wave.open(str(path), "rb") as reader:
            channels = reader.getnchannels()
            if reader.getsampwidth() != 2 or reader.getframerate() != SPEECH_SAMPLE_RATE:
                return None
            if channels > 1 and not split_channels:
                return None  # a downmix is left to swresample, which does it in C
            if channels == 1:
                frames = reader.readframes(reader.getnframes())  # the PCM itself: read once
                return SpeechPcm(tracks=[frames], source_channels=1) if frames else None
            # Splitting is slicing, a second at a time: only the kept channels' PCM grows.
            tracks = [bytearray() for _ in range(min(channels, SPLIT_CHANNELS))]
            while chunk := reader.readframes(_WAV_CHUNK_FRAMES):
                samples = array.array("h", chunk[: len(chunk) // (2 * channels) * 2 * channels])
                for channel, track in enumerate(tracks):
                    track += samples[channel::channels].tobytes()
    except (wave.Error, EOFError):
        return None
    if not tracks[0]:
        return None
    return SpeechPcm(tracks=[bytes(t) for t in tracks], source_channels=channels)
