"""Turn any audio or video into what speech services want: 16 kHz mono Opus in Ogg.

Speech recognisers resample to 16 kHz mono anyway, so sending them a video or a
44.1 kHz stereo WAV only costs upload time and provider file-size limits; at 24 kb/s
Opus keeps speech intelligible at a fraction of the size. Uses PyAV (``av``), imported
inside the functions so modules that import this one stay cheap to load.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from av.container import InputContainer

SPEECH_SAMPLE_RATE = 16_000
DEFAULT_BITRATE = 24_000
# ffmpeg picks its ANSI-art demuxer for any file named .txt/.ans/…: that is text, not media.
_TEXT_DEMUXERS = frozenset({"tty"})
_OPUS_FRAME_SAMPLES = 320  # 20 ms at 16 kHz: Opus's usual frame, and what libopus wants whole


class MediaError(ValueError):
    """The input has no audio that can be decoded; the message says why."""


class MediaInfo(BaseModel):
    duration_ms: int = Field(ge=0)
    channels: int = Field(ge=0)
    sample_rate: int = Field(ge=0)
    """The decoder's rate; for Opus that is always 48000, whatever rate went into the encoder."""
    has_audio: bool
    has_video: bool
    codec: str | None = None
    """The first audio stream's codec (``opus``, ``aac``, ``pcm_s16le``…), None without audio."""


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


def probe(source: Path | bytes) -> MediaInfo:
    """Describe a media file's streams and length, without decoding it where the container knows."""
    import av

    try:
        with _open_input(source) as container:
            has_video = bool(container.streams.video)
            if not container.streams.audio:
                duration_ms = _container_duration_ms(container, None) or 0
                return MediaInfo(
                    duration_ms=duration_ms, channels=0, sample_rate=0, has_audio=False, has_video=has_video
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
            )
    except av.FFmpegError as error:
        raise MediaError(f"cannot read the media file: {error}") from error


def to_speech_opus(source: Path | bytes, dest: Path, *, bitrate: int = DEFAULT_BITRATE) -> TranscodeResult:
    """Write the first audio track of ``source`` (audio or video) to ``dest`` as 16 kHz mono Ogg Opus.

    ``dest`` appears only when the whole file was written (a temporary name is renamed).
    Raises ``MediaError`` when the input has no audio stream or nothing in it decodes.
    """
    import av

    input_bytes = len(source) if isinstance(source, bytes) else source.stat().st_size
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        with _open_input(source) as container:
            if not container.streams.audio:
                raise MediaError("the file has no audio stream")
            audio = container.streams.audio[0]
            samples = _encode_opus(container, audio, partial, bitrate)
        if samples == 0:
            raise MediaError("the audio stream holds no decodable samples")
        partial.replace(dest)
    except av.FFmpegError as error:
        raise MediaError(f"cannot transcode the audio: {error}") from error
    finally:
        partial.unlink(missing_ok=True)
    return TranscodeResult(
        duration_ms=round(samples * 1000 / SPEECH_SAMPLE_RATE),
        input_bytes=input_bytes,
        output_bytes=dest.stat().st_size,
        bitrate=bitrate,
    )


def _encode_opus(container: InputContainer, audio: Any, dest: Path, bitrate: int) -> int:
    """Decode ``audio``, resample to 16 kHz mono and encode it into ``dest``; return the sample count."""
    import av

    resampler = av.AudioResampler(
        format="s16", layout="mono", rate=SPEECH_SAMPLE_RATE, frame_size=_OPUS_FRAME_SAMPLES
    )
    written = 0
    with av.open(str(dest), mode="w", format="ogg") as output:
        stream = output.add_stream("libopus", rate=SPEECH_SAMPLE_RATE, layout="mono")
        stream.bit_rate = bitrate
        # voip mode favours intelligibility of speech over fidelity of music.
        stream.codec_context.options = {"application": "voip"}
        time_base = Fraction(1, SPEECH_SAMPLE_RATE)

        def encode(frame: Any) -> None:
            nonlocal written
            # Number frames from zero: a video's audio track may start at an arbitrary pts.
            frame.pts, frame.time_base = written, time_base
            written += frame.samples
            output.mux(stream.encode(frame))

        for decoded in _decoded_frames(container, audio):
            for frame in resampler.resample(decoded):
                encode(frame)
        for frame in resampler.resample(None):
            encode(frame)
        output.mux(stream.encode(None))
    return written


def _decoded_frames(container: InputContainer, audio: Any) -> Iterator[Any]:
    """Decoded frames of one stream, skipping damaged packets the way ffmpeg's CLI does."""
    import av

    for packet in container.demux(audio):
        try:
            yield from packet.decode()
        except av.InvalidDataError:
            continue


def _open_input(source: Path | bytes) -> InputContainer:
    import av

    if isinstance(source, Path) and not source.is_file():
        raise FileNotFoundError(source)
    target: str | io.BytesIO = str(source) if isinstance(source, Path) else io.BytesIO(source)
    try:
        container = av.open(target, mode="r", metadata_errors="ignore")
    except av.FFmpegError as error:
        raise MediaError(f"not a media file that can be decoded: {error}") from error
    if container.format.name in _TEXT_DEMUXERS:
        container.close()
        raise MediaError("a text file, not audio or video")
    return container


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
