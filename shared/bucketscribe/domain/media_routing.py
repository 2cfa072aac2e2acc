"""What a provider gets for an upload, decided from what the upload holds and what the provider decodes.

Each upload goes the cheapest way that keeps every bit of speech the provider can use:

1. **as it is** (``pass_through``) when the provider decodes its container and codec, and its
   channels and sample rate suit the profile's model;
2. **its audio copied** (``remux``) into a container the provider reads when only the container
   is the trouble (AAC from an MP4 video into an M4A, Opus from WebM into Ogg): no re-encoding;
3. **re-encoded** (``transcode``) only when the provider cannot decode the codec, or the channels
   or sample rate must change. The target is 16-bit PCM, which adds no second lossy generation
   (re-encoding AAC to 24 kb/s Opus measured WER 0.28 against 0.17 for the same speech as WAV);
   Opus at ``OPUS_BITRATE`` is used only where PCM would need more parts than Opus, and where
   the profile asks for a compact track (``extract_audio: always``).

Audio longer or larger than one provider job takes is cut into parts (``part_ms`` says how long
one may be); the cutting itself is ``pipeline.parts``. Per-channel recognition keeps the
channels it needs, and a profile that needs more channels than the upload has refuses it here,
before any provider is called. Pure decisions: no I/O, no PyAV.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from bucketscribe.domain.media_sniff import MediaKind, Sniffed

# The Opus rate for re-encoded speech, per channel. bench/transcode.py measured Opus from a
# lossless source at 16/24/32 kb/s within the noise of lossless 16 kHz PCM for Whisper base
# (pooled WER 0.088 / 0.109 / 0.097 against 0.084, over three voices); 32 kb/s is the top of
# that range, for the cases that choose Opus at all.
OPUS_BITRATE = 32_000
SPEECH_SAMPLE_RATE = 16_000
# The rates libopus encodes; anything else is resampled to SPEECH_SAMPLE_RATE first.
OPUS_RATES = frozenset({8_000, 12_000, 16_000, 24_000, 48_000})
# Parts are planned this much under the provider's limits: container overhead, and compressed
# audio whose bitrate varies along the file.
PART_MARGIN = 0.97
MAX_PARTS = 99

ConvertMode = Literal["auto", "always", "never"]
# Bytes per sample of the PCM codecs a WAV holds (ffmpeg's encoder names).
PCM_SAMPLE_BYTES = {
    "pcm_u8": 1,
    "pcm_mulaw": 1,
    "pcm_alaw": 1,
    "pcm_s16le": 2,
    "pcm_s24le": 3,
    "pcm_s32le": 4,
    "pcm_f32le": 4,
    "pcm_f64le": 8,
}


class Route(StrEnum):
    PASS_THROUGH = "pass_through"  # noqa: S105 - a route, not a password
    REMUX = "remux"
    TRANSCODE = "transcode"


class MediaProbe(BaseModel):
    """What an upload holds, as far as it was read; ``None`` where that is not known."""

    # Families as ffmpeg's demuxers see them: wav, mp3, mp4 (also m4a/mov), ogg, matroska (also
    # webm), asf (wma/wmv), flac, amr, adts (raw AAC), avi, flv, mpeg.
    container: str
    codec: str | None = None  # of the first audio stream, as ffmpeg names it: pcm_s16le, aac, opus…
    channels: int | None = None
    sample_rate: int | None = None
    duration_ms: int | None = Field(default=None, ge=0)
    size_bytes: int = Field(ge=0)
    has_video: bool | None = None
    audio_bit_rate: int | None = None  # bits per second of the audio stream, where known
    # "header": only the first bytes were read (no decoder in this deployment); "decoder": PyAV.
    read_by: Literal["header", "decoder"] = "decoder"

    @classmethod
    def from_header(cls, sniffed: Sniffed, *, size: int, kind: MediaKind) -> MediaProbe:
        """What the first bytes tell (a WAV header tells a lot, most containers little)."""
        container, codec = _FROM_SNIFF.get(sniffed.container, (sniffed.container, None))
        return cls(
            container=container,
            codec=sniffed.codec or codec,
            channels=sniffed.channels,
            sample_rate=sniffed.sample_rate,
            duration_ms=sniffed.duration_ms,
            size_bytes=size,
            has_video=False if container == "wav" else (True if kind is MediaKind.VIDEO else None),
            read_by="header",
        )

    @property
    def complete(self) -> bool:
        """Whether it says all that routing asks (a plain WAV's header does: no decoder needed)."""
        return None not in (self.codec, self.channels, self.sample_rate, self.duration_ms, self.has_video)


# sniff's container names → (container family, codec where the name implies it)
_FROM_SNIFF: dict[str, tuple[str, str | None]] = {
    "ogg-opus": ("ogg", "opus"),
    "ogg-speex": ("ogg", "speex"),
    "adts": ("adts", "aac"),
    "mp3": ("mp3", "mp3"),
    "flac": ("flac", "flac"),
}


class MediaRequirements(BaseModel):
    """What one provider job takes, for one profile: the provider's decoders, limits and the
    channels and sample rate the profile's recognition needs."""

    provider: str
    profile: str
    # container family → the audio codecs decoded in it (None: any); None: whatever ffmpeg reads
    # (an engine of our own, such as the local emulators' — "the local engine gets the original").
    decodes: dict[str, frozenset[str] | None] | None
    takes_video: bool
    max_bytes: int = Field(gt=0)
    # The largest object a function may make for the provider (a track, a part), where its scratch
    # space is tighter than the provider's limit; an upload passed on as it is is not made here.
    made_max_bytes: int | None = Field(default=None, gt=0)
    max_duration_ms: int = Field(gt=0)
    max_channels: int | None = None
    sample_rate: int | None = None  # the one rate the model takes (an 8 kHz or a 16 kHz model)
    min_sample_rate: int | None = None
    # Per-channel recognition (agent and customer on their own channels) needs
    # this many channels; ``channels_wanted`` says what in words, for the refusal.
    channels_needed: int = Field(default=1, ge=1)
    channels_wanted: str = "any audio"

    @property
    def made_limit(self) -> int:
        """The largest object made for the provider: its own limit, or less where scratch is tight."""
        return min(self.max_bytes, self.made_max_bytes or self.max_bytes)

    def decodes_codec(self, container: str, codec: str | None) -> bool:
        if self.decodes is None:
            return True
        if container not in self.decodes:
            return False
        codecs = self.decodes[container]
        return codecs is None or codec is None or codec in codecs


class AudioTarget(BaseModel):
    """The audio a provider is sent when it is not the upload: a container and, when re-encoded,
    the codec, rate and channels."""

    muxer: str  # ffmpeg's muxer: wav, ipod (m4a), mp3, ogg, asf, amr, flac, adts
    extension: str  # of the object stored for the provider
    codec: str | None = None  # the encoder; None copies the audio packets as they are
    sample_rate: int | None = None
    channels: int | None = None
    bit_rate: int | None = None

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES.get(self.extension, "application/octet-stream")

    def bytes_per_ms(self) -> float | None:
        """What one millisecond of the output costs, where the target fixes it."""
        if self.codec in PCM_SAMPLE_BYTES and self.sample_rate and self.channels:
            return self.sample_rate * self.channels * PCM_SAMPLE_BYTES[self.codec] / 1000
        if self.bit_rate:
            return self.bit_rate / 8000 * 1.02  # Ogg pages and packet headers
        return None


_CONTENT_TYPES = {
    "wav": "audio/wav",
    "m4a": "audio/mp4",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "wma": "audio/x-ms-wma",
    "amr": "audio/amr",
    "flac": "audio/flac",
    "aac": "audio/aac",
}

# codec → where its packets can be copied: (container family, muxer, extension)
_COPY_INTO: dict[str, tuple[str, str, str]] = {
    "aac": ("mp4", "ipod", "m4a"),
    "mp3": ("mp3", "mp3", "mp3"),
    "opus": ("ogg", "ogg", "ogg"),
    "vorbis": ("ogg", "ogg", "ogg"),
    "speex": ("ogg", "ogg", "ogg"),
    "flac": ("flac", "flac", "flac"),
    "wmav1": ("asf", "asf", "wma"),
    "wmav2": ("asf", "asf", "wma"),
    "amr_nb": ("amr", "amr", "amr"),
}


class RouteDecision(BaseModel):
    """What was decided for an upload, and why (stored on its job)."""

    route: Route
    reason: str
    # The audio made for the provider (remux/transcode), and for the parts of a split upload.
    target: AudioTarget | None = None
    # The longest part one provider job takes; set only when the upload is cut into parts.
    part_ms: int | None = Field(default=None, gt=0)


class MediaRefused(ValueError):
    """The upload cannot be sent to the provider this profile names; the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Mismatch(StrEnum):
    """Why a provider cannot take an upload as it is."""

    FORMAT = "format"  # container or codec
    VIDEO = "video"
    CHANNELS = "channels"
    RATE = "rate"


def decide_route(
    probe: MediaProbe, needs: MediaRequirements, *, mode: ConvertMode = "auto", can_convert: bool = True
) -> RouteDecision:
    """How ``probe``'s upload reaches the provider ``needs`` describes; ``MediaRefused`` if it cannot.

    ``can_convert`` is False where no decoder is installed: then only what passes as it is goes.
    """
    _check_channels(probe, needs)
    mismatches = _what_it_cannot_take(probe, needs)
    if mode == "always" and can_convert:
        target = _opus_target(probe, needs)
        decision = RouteDecision(
            route=Route.TRANSCODE,
            reason="the profile asks for a compact speech track (extract_audio: always): "
            + _target_words(target),
            target=target,
        )
    elif not mismatches:
        decision = RouteDecision(
            route=Route.PASS_THROUGH, reason=f"{needs.provider} decodes {_described(probe)} as it is"
        )
    elif mode == "never" or not can_convert:
        raise MediaRefused(
            "UNSUPPORTED_MEDIA",
            f"{needs.provider} cannot take the upload as it is: {_listed(mismatches)}; "
            + (
                "conversion is off for this profile (extract_audio: never)"
                if mode == "never"
                else "this deployment cannot convert media (PyAV is not installed)"
            ),
        )
    else:
        decision = _converted(probe, needs, mismatches)
    return _with_parts(probe, needs, decision, mode=mode, can_convert=can_convert)


def _check_channels(probe: MediaProbe, needs: MediaRequirements) -> None:
    if probe.channels is None or probe.channels >= needs.channels_needed:
        return
    have = "1 channel (mono)" if probe.channels == 1 else f"{probe.channels} channels"
    raise MediaRefused(
        "TOO_FEW_CHANNELS",
        f"the upload has {have}, but profile {needs.profile!r} expects {needs.channels_wanted}; "
        "upload the recording with its separate channels, or use a profile that recognises one channel",
    )


def _what_it_cannot_take(probe: MediaProbe, needs: MediaRequirements) -> dict[Mismatch, str]:
    found: dict[Mismatch, str] = {}
    if not needs.decodes_codec(probe.container, probe.codec):
        found[Mismatch.FORMAT] = f"{needs.provider} does not decode {_described(probe)}"
    if probe.has_video and not needs.takes_video:
        found[Mismatch.VIDEO] = f"{needs.provider} takes audio only, and the upload has a video track"
    if probe.channels is not None and needs.max_channels is not None and probe.channels > needs.max_channels:
        found[Mismatch.CHANNELS] = (
            f"{needs.provider} takes at most {needs.max_channels} channels, the upload has {probe.channels}"
        )
    # Opus decoders always report 48 kHz, whatever went into the encoder: its rate proves nothing.
    rate = probe.sample_rate if probe.codec != "opus" else None
    if rate is not None and needs.sample_rate is not None and rate != needs.sample_rate:
        found[Mismatch.RATE] = f"the model needs {needs.sample_rate} Hz audio, the upload is {rate} Hz"
    elif rate is not None and needs.min_sample_rate is not None and rate < needs.min_sample_rate:
        found[Mismatch.RATE] = f"the model needs at least {needs.min_sample_rate} Hz, the upload is {rate} Hz"
    return found


def _listed(mismatches: dict[Mismatch, str]) -> str:
    return "; ".join(mismatches.values())


def _described(probe: MediaProbe) -> str:
    codec = f"{probe.codec} in " if probe.codec else ""
    return f"{codec}{probe.container}"


def _converted(probe: MediaProbe, needs: MediaRequirements, mismatches: dict[Mismatch, str]) -> RouteDecision:
    """A copy of the audio where only the container (or a video track) is in the way, else a re-encode."""
    copy = copy_target(probe, needs)
    if copy is not None and mismatches.keys() <= {Mismatch.FORMAT, Mismatch.VIDEO}:
        return RouteDecision(
            route=Route.REMUX,
            reason=f"{_listed(mismatches)}: its {probe.codec} audio is copied into {copy.extension}, "
            "not re-encoded",
            target=copy,
        )
    target = _reencode_target(probe, needs)
    return RouteDecision(
        route=Route.TRANSCODE,
        reason=f"{_listed(mismatches)}: re-encoded to {_target_words(target)}",
        target=target,
    )


def copy_target(probe: MediaProbe, needs: MediaRequirements) -> AudioTarget | None:
    """Where the upload's audio packets can go as they are, for this provider (None: nowhere)."""
    codec = probe.codec
    if codec is None:
        return None
    if codec.startswith("pcm_"):
        if not needs.decodes_codec("wav", codec) or codec not in PCM_SAMPLE_BYTES:
            return None
        # PCM samples are written out again as they are (the same codec, rate and channels):
        # the same bits, and a cut falls on the very sample.
        return AudioTarget(
            muxer="wav", extension="wav", codec=codec, sample_rate=probe.sample_rate, channels=probe.channels
        )
    if codec not in _COPY_INTO:
        return None
    container, muxer, extension = _COPY_INTO[codec]
    return AudioTarget(muxer=muxer, extension=extension) if needs.decodes_codec(container, codec) else None


def _target_words(target: AudioTarget) -> str:
    channels = {1: "mono", 2: "stereo"}.get(target.channels or 0, f"{target.channels} channels")
    rate = f"{(target.sample_rate or 0) / 1000:g} kHz"
    if target.codec == "libopus":
        return f"Opus {(target.bit_rate or 0) // 1000} kb/s, {rate} {channels}"
    return f"16-bit PCM WAV, {rate} {channels}"


def _target_channels(probe: MediaProbe, needs: MediaRequirements) -> int:
    """Mono unless per-channel recognition needs the channels kept."""
    if needs.channels_needed <= 1:
        return 1
    have = probe.channels or needs.channels_needed
    return min(have, needs.max_channels) if needs.max_channels else have


def _target_rate(probe: MediaProbe, needs: MediaRequirements, *, opus: bool) -> int:
    if needs.sample_rate is not None:
        rate = needs.sample_rate
    else:
        rate = min(probe.sample_rate or SPEECH_SAMPLE_RATE, SPEECH_SAMPLE_RATE)
        if needs.min_sample_rate is not None:
            rate = max(rate, needs.min_sample_rate)
    if opus and rate not in OPUS_RATES:
        rate = SPEECH_SAMPLE_RATE
    return rate


def _pcm_target(probe: MediaProbe, needs: MediaRequirements) -> AudioTarget:
    return AudioTarget(
        muxer="wav",
        extension="wav",
        codec="pcm_s16le",
        sample_rate=_target_rate(probe, needs, opus=False),
        channels=_target_channels(probe, needs),
    )


def _opus_target(probe: MediaProbe, needs: MediaRequirements) -> AudioTarget:
    channels = _target_channels(probe, needs)
    return AudioTarget(
        muxer="ogg",
        extension="ogg",
        codec="libopus",
        sample_rate=_target_rate(probe, needs, opus=True),
        channels=channels,
        bit_rate=OPUS_BITRATE * channels,
    )


def _reencode_target(probe: MediaProbe, needs: MediaRequirements) -> AudioTarget:
    """PCM, unless Opus would keep the upload in fewer parts (and the provider decodes Opus)."""
    pcm = _pcm_target(probe, needs)
    if probe.duration_ms is None or not needs.decodes_codec("ogg", "opus"):
        return pcm
    opus = _opus_target(probe, needs)
    pcm_parts = parts_needed(probe.duration_ms, longest_part_ms(needs, pcm.bytes_per_ms()))
    opus_parts = parts_needed(probe.duration_ms, longest_part_ms(needs, opus.bytes_per_ms()))
    return opus if opus_parts < pcm_parts else pcm


def longest_part_ms(needs: MediaRequirements, bytes_per_ms: float | None) -> int:
    """The longest audio one provider job takes at ``bytes_per_ms``, with a margin."""
    by_size = needs.made_limit / bytes_per_ms if bytes_per_ms else math.inf
    return int(min(needs.max_duration_ms, by_size) * PART_MARGIN)


def parts_needed(duration_ms: int, part_ms: int) -> int:
    return max(1, math.ceil(duration_ms / part_ms))


def _with_parts(
    probe: MediaProbe,
    needs: MediaRequirements,
    decision: RouteDecision,
    *,
    mode: ConvertMode,
    can_convert: bool,
) -> RouteDecision:
    """The decision, with parts when one provider job cannot hold the upload."""
    output_bytes = _output_bytes(probe, decision)
    too_long = probe.duration_ms is not None and probe.duration_ms > needs.max_duration_ms
    limit = needs.max_bytes if decision.route is Route.PASS_THROUGH else needs.made_limit
    too_big = output_bytes is not None and output_bytes > limit
    if not (too_long or too_big):
        return decision
    code = "AUDIO_TOO_LONG" if too_long else "FILE_TOO_LARGE"
    facts = (
        (f"the audio lasts {probe.duration_ms / 3_600_000:.2f} h" if probe.duration_ms is not None else "")
        + (" and " if probe.duration_ms is not None and output_bytes is not None else "")
        + (f"would be sent as {output_bytes / 2**20:.0f} MB" if output_bytes is not None else "")
        + f"; {needs.provider} takes at most {needs.max_duration_ms / 3_600_000:g} h and "
        f"{limit / 2**20:.0f} MB in one job"
    )
    if probe.duration_ms is None or mode == "never" or not can_convert:
        why = (
            "splitting is off for this profile (extract_audio: never)"
            if mode == "never"
            else "this deployment cannot cut media (PyAV is not installed)"
            if not can_convert
            else "its length is unknown, so it cannot be cut"
        )
        raise MediaRefused(code, f"{facts}, and {why}")
    # Parts are always made by us: a copy of the audio packets where the provider decodes
    # them (no video, no re-encoding), else the re-encoded audio.
    target = decision.target or copy_target(probe, needs) or _reencode_target(probe, needs)
    part_ms = longest_part_ms(needs, target.bytes_per_ms() or _copy_bytes_per_ms(probe))
    count = parts_needed(probe.duration_ms, part_ms)
    if count > MAX_PARTS:
        raise MediaRefused(code, f"{facts}, and it would take {count} parts (at most {MAX_PARTS})")
    return decision.model_copy(
        update={
            "target": target,
            "part_ms": part_ms,
            "reason": f"{decision.reason}; {facts}: cut at silences into {count} parts "
            f"of at most {part_ms / 3_600_000:.2f} h{_made_cap(needs)}",
        }
    )


def _made_cap(needs: MediaRequirements) -> str:
    if needs.made_limit >= needs.max_bytes:
        return ""
    return f" (what a function makes is kept under {needs.made_limit / 2**20:.0f} MB: its scratch space)"


def _output_bytes(probe: MediaProbe, decision: RouteDecision) -> int | None:
    """How large the media sent would be in one piece."""
    if decision.route is Route.PASS_THROUGH:
        return probe.size_bytes
    per_ms = (decision.target.bytes_per_ms() if decision.target else None) or _copy_bytes_per_ms(probe)
    if per_ms is None or probe.duration_ms is None:
        return None
    return int(per_ms * probe.duration_ms)


def _copy_bytes_per_ms(probe: MediaProbe) -> float | None:
    """Bytes per millisecond of the upload's audio stream alone (the whole file's where unknown)."""
    if probe.audio_bit_rate:
        return probe.audio_bit_rate / 8000
    if probe.duration_ms:
        return probe.size_bytes / probe.duration_ms
    return None
