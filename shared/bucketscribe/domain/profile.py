"""Per-prefix settings: which provider, model and options apply to an upload.

A profile is chosen by the longest matching key prefix below the input prefix,
so ``incoming/calls/`` can use 8 kHz telephone settings and ``incoming/media/``
16 kHz ones.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

OutputFormat = Literal["json", "txt", "srt", "vtt"]
ALL_OUTPUTS: tuple[OutputFormat, ...] = ("json", "txt", "srt", "vtt")
SisChannel = Literal["MONO", "LEFT_AGENT", "RIGHT_AGENT"]


class SisOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    property: str = "chinese_16k_media"
    audio_format: str = "auto"
    add_punc: bool = True
    digit_norm: bool = True
    need_word_info: bool = True
    vocabulary_id: str | None = None
    diarization: bool = True
    channel: SisChannel = "MONO"
    emotion: bool = False
    speed: bool = False


DashScopeModel = Literal[
    "paraformer-v2", "paraformer-8k-v2", "paraformer-v1", "paraformer-8k-v1", "paraformer-mtl-v1"
]
DASHSCOPE_V2_MODELS = frozenset({"paraformer-v2", "paraformer-8k-v2"})
DASHSCOPE_LANGUAGES = frozenset({"zh", "en", "ja", "yue", "ko", "de", "fr", "ru"})


class DashScopeOptions(BaseModel):
    """Paraformer file-transcription parameters (providers.md §1.2), checked before any submission."""

    model_config = ConfigDict(extra="forbid")

    model: DashScopeModel = "paraformer-v2"
    language_hints: list[str] | None = None
    vocabulary_id: str | None = None
    phrase_id: str | None = None
    diarization_enabled: bool = False
    speaker_count: int | None = Field(default=None, ge=2, le=100)
    channel_id: list[int] = Field(default_factory=lambda: [0])
    disfluency_removal_enabled: bool = False
    timestamp_alignment_enabled: bool = False
    special_word_filter: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _valid_combination(self) -> DashScopeOptions:
        v2 = self.model in DASHSCOPE_V2_MODELS
        if self.language_hints is not None:
            if self.model != "paraformer-v2":
                raise ValueError(f"language_hints work only with paraformer-v2, not {self.model}")
            unknown = sorted(set(self.language_hints) - DASHSCOPE_LANGUAGES)
            if unknown:
                raise ValueError(
                    f"language_hints {unknown} are not supported (use {sorted(DASHSCOPE_LANGUAGES)})"
                )
        if self.vocabulary_id and not v2:
            raise ValueError(f"vocabulary_id (hot words) needs a v2 model; {self.model} uses phrase_id")
        if self.phrase_id and v2:
            raise ValueError(f"phrase_id is for v1 models; {self.model} uses vocabulary_id")
        if self.speaker_count is not None and not self.diarization_enabled:
            raise ValueError("speaker_count needs diarization_enabled: true")
        if not self.channel_id or any(c < 0 for c in self.channel_id):
            raise ValueError("channel_id must list one or more track numbers (0 = first)")
        if self.diarization_enabled and len(self.channel_id) > 1:
            raise ValueError("diarization works on mono audio only: pick one channel_id")
        return self

    def parameters(self) -> dict[str, Any]:
        """Keyword arguments for ``Transcription.async_call`` (``None`` values are dropped by the SDK)."""
        params: dict[str, Any] = {
            "channel_id": self.channel_id,
            "language_hints": self.language_hints,
            "vocabulary_id": self.vocabulary_id,
            "phrase_id": self.phrase_id,
            "diarization_enabled": self.diarization_enabled,
            "speaker_count": self.speaker_count,
            "disfluency_removal_enabled": self.disfluency_removal_enabled,
            "timestamp_alignment_enabled": self.timestamp_alignment_enabled,
            "special_word_filter": json.dumps(self.special_word_filter) if self.special_word_filter else None,
        }
        return {k: v for k, v in params.items() if v is not None}


RealtimeModel = Literal[
    "gummy-realtime-v1",
    "paraformer-realtime-v2",
    "paraformer-realtime-v1",
    "paraformer-realtime-8k-v2",
    "paraformer-realtime-8k-v1",
]
GUMMY_MODELS = frozenset({"gummy-realtime-v1"})
# What each real-time model documents it can hear: gummy's source languages (those of its
# translation pairs) and paraformer-realtime-v2's language_hints.
GUMMY_SOURCE_LANGUAGES = frozenset(
    {"zh", "en", "ja", "ko", "yue", "fr", "de", "es", "ru", "it", "pt", "id", "ar", "hi", "da", "ur", "tr"}
    | {"nl", "ms", "vi"}
)
PARAFORMER_REALTIME_V2_LANGUAGES = DASHSCOPE_LANGUAGES
ChannelMode = Literal["mix", "split"]


class RealtimeOptions(BaseModel):
    """DashScope real-time recognition: gummy (optionally translating) or Paraformer real-time.

    ``channels: split`` streams each channel of a stereo recording on its own (a call: agent on
    the left, customer on the right) and merges the sentences by time, labelled with
    ``speakers``; ``mix`` downmixes. An upload whose audio would not stream within the function's
    time budget is refused with the reason, or with ``longer_uploads: batch`` transcribed by
    DashScope file transcription instead (the profile's ``dashscope`` options).
    """

    model_config = ConfigDict(extra="forbid")

    model: RealtimeModel = "gummy-realtime-v1"
    source_language: str = "auto"
    translate: str | None = None
    channels: ChannelMode = "mix"
    speakers: tuple[str, str] = ("Agent", "Customer")
    longer_uploads: Literal["refuse", "batch"] = "refuse"

    @field_validator("source_language")
    @classmethod
    def _language_the_model_hears(cls, source: str, info: ValidationInfo) -> str:
        model = info.data.get("model")
        if source == "auto" or model is None:
            return source
        if model in GUMMY_MODELS:
            known = GUMMY_SOURCE_LANGUAGES
        elif model == "paraformer-realtime-v2":
            known = PARAFORMER_REALTIME_V2_LANGUAGES
        else:
            raise ValueError(f"{model} takes no language (only paraformer-realtime-v2 and gummy do)")
        if source not in known:
            raise ValueError(
                f"{model} does not recognise {source!r} (use one of auto, {', '.join(sorted(known))})"
            )
        return source

    @field_validator("translate")
    @classmethod
    def _only_gummy_translates(cls, target: str | None, info: ValidationInfo) -> str | None:
        model = info.data.get("model")
        if target is not None and model is not None and model not in GUMMY_MODELS:
            raise ValueError(f"{model} does not translate; gummy-realtime-v1 does")
        return target

    @property
    def gummy(self) -> bool:
        return self.model in GUMMY_MODELS


OverlapStyle = Literal["simultaneous", "dialogue"]


class RenderOptions(BaseModel):
    """How a transcript becomes txt, srt and vtt: speaker labels and the subtitle rules.

    The subtitle defaults are those of the Netflix Timed Text Style Guide: 42 characters per
    line and 20 characters per second for adult programmes (English (USA) guide), at most two
    lines, and a cue on screen for 5/6 s to 7 s (General Requirements).  Widths and reading
    speed are counted in display columns, a CJK character taking two, so the same limits give
    21 Chinese characters per line and 10 per second (Netflix's Chinese guides: 16 and 9).

    ``overlap`` is what happens when speakers talk over each other:

    - ``simultaneous`` (the default): each speaker keeps their own cues, timed to their own
      speech, and the cues overlap as the speech does; SRT and WebVTT both allow overlapping
      cues, players stack them, and in WebVTT the later speaker's cue is placed at the top
      (``line:0``) so the two never cover each other.  Nothing is delayed, shortened or moved
      away from the words it shows, and each speaker keeps two lines.
    - ``dialogue``: the broadcast style, for players that show one cue at a time: two
      overlapping one-line utterances share one cue, a dash before each speaker's line
      (``-[Agent] …`` / ``-[Customer] …``); a cue never overlaps another, so during sustained
      cross-talk cues wait for the previous one to end.
    """

    model_config = ConfigDict(extra="forbid")

    speaker_labels: bool = True
    line_chars: int = Field(default=42, ge=10, le=200)
    max_lines: int = Field(default=2, ge=1, le=3)
    # Characters in a whole cue; by default the lines' room (line_chars × max_lines).  Kept
    # from the first profile format, where it also narrowed the line when under 42.
    max_cue_chars: int | None = Field(default=None, ge=10)
    min_cue_ms: int = Field(default=833, ge=0)
    max_cue_ms: int = Field(default=7000, ge=500)
    max_cps: float = Field(default=20.0, ge=5, le=100)
    overlap: OverlapStyle = "simultaneous"

    @model_validator(mode="after")
    def _consistent(self) -> RenderOptions:
        if "min_cue_ms" in self.model_fields_set and self.min_cue_ms > self.max_cue_ms:
            raise ValueError(f"min_cue_ms ({self.min_cue_ms}) is over max_cue_ms ({self.max_cue_ms})")
        if self.readable_columns < 10:
            # A cue must hold a word or two: 10 characters readable within max_cue_ms.
            raise ValueError(
                f"max_cps {self.max_cps:g} × max_cue_ms {self.max_cue_ms} leaves under 10 characters per cue"
            )
        if self.overlap == "dialogue" and self.max_lines < 2:
            raise ValueError("overlap 'dialogue' puts two speakers in one cue: it needs max_lines >= 2")
        return self

    @property
    def cue_chars(self) -> int:
        """Characters in a whole cue, labels included."""
        return self.max_cue_chars or self.line_chars * self.max_lines

    @property
    def readable_columns(self) -> int:
        """The most display columns one cue may hold: what can be read within max_cue_ms."""
        columns = math.floor(self.max_cps * self.max_cue_ms / 1000)
        while self.reading_ms(columns) > self.max_cue_ms:  # float rounding, never more than one
            columns -= 1
        return columns

    def reading_ms(self, columns: int) -> int:
        """How long ``columns`` display columns take to read at ``max_cps``."""
        return math.ceil(columns * 1000 / self.max_cps)

    @property
    def shortest_cue_ms(self) -> int:
        """The minimum duration, never over the maximum (older profiles set only max_cue_ms)."""
        return min(self.min_cue_ms, self.max_cue_ms)


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "default"
    prefix: str = ""
    provider: Literal["sis", "dashscope", "dashscope-realtime"] = "sis"
    # "realtime": the submit worker streams the upload itself (provider dashscope-realtime) and
    # writes the outputs at once; "batch": a provider task, finished by callback, push or poll.
    mode: Literal["batch", "realtime"] = "batch"
    language: str | None = None
    # What the provider is sent (media/routing.py). "auto": the upload as it is when the provider
    # decodes it, its audio copied into a container it reads, or re-encoded (16-bit PCM) only
    # what it cannot decode; cut into parts when over its limits. "always": a compact Opus
    # speech track whatever the upload. "never": the upload as it is, or refused with the reason.
    extract_audio: Literal["auto", "always", "never"] = "auto"
    outputs: list[OutputFormat] = Field(default_factory=lambda: list(ALL_OUTPUTS))
    render: RenderOptions = Field(default_factory=RenderOptions)
    sis: SisOptions = Field(default_factory=SisOptions)
    dashscope: DashScopeOptions = Field(default_factory=DashScopeOptions)
    realtime: RealtimeOptions = Field(default_factory=RealtimeOptions)

    @model_validator(mode="before")
    @classmethod
    def _realtime_provider_means_realtime_mode(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("provider") == "dashscope-realtime" and "mode" not in data:
            return {**data, "mode": "realtime"}
        return data

    @model_validator(mode="after")
    def _mode_fits_provider(self) -> Profile:
        if (self.mode == "realtime") != (self.provider == "dashscope-realtime"):
            raise ValueError(
                f"mode {self.mode!r} does not go with provider {self.provider!r}: "
                "real-time mode is provider dashscope-realtime, and that provider is real-time only"
            )
        return self

    @property
    def model_name(self) -> str:
        if self.provider == "dashscope-realtime":
            return self.realtime.model
        return self.dashscope.model if self.provider == "dashscope" else self.sis.property

    @property
    def providers_used(self) -> set[str]:
        """Every provider this profile's uploads may go to (real time may hand long ones to batch)."""
        if self.mode == "realtime" and self.realtime.longer_uploads == "batch":
            return {self.provider, "dashscope"}
        return {self.provider}

    def batch_profile(self) -> Profile:
        """This profile as DashScope file transcription: where real time sends uploads too long for it."""
        return self.model_copy(update={"provider": "dashscope", "mode": "batch"})

    def serving(self, provider: str) -> Profile:
        """This profile as it serves a job of ``provider``: a real-time profile's upload that was
        handed to file transcription (too long to stream) is served by its batch profile."""
        return self.batch_profile() if self.mode == "realtime" and provider != self.provider else self

    @property
    def channels_needed(self) -> int:
        """How many audio channels an upload must have for this profile's recognition settings."""
        if self.provider == "dashscope-realtime":
            return 2 if self.realtime.channels == "split" else 1
        if self.provider == "dashscope":
            return max(self.dashscope.channel_id) + 1
        return 1 if self.sis.channel == "MONO" else 2

    def channel_expectation(self) -> str:
        """What this profile expects of the audio's channels, in words for an error message."""
        if self.provider == "sis" and self.sis.channel != "MONO":
            agent, customer = ("left", "right") if self.sis.channel == "LEFT_AGENT" else ("right", "left")
            return f"stereo audio with the agent on the {agent} channel and the customer on the {customer}"
        if self.provider == "dashscope-realtime" and self.realtime.channels == "split":
            first, second = self.realtime.speakers
            return (
                f"stereo audio with the {first.lower()} on the left channel "
                f"and the {second.lower()} on the right"
            )
        needed = self.channels_needed
        return (
            "any audio"
            if needed == 1
            else f"audio with at least {needed} channels ({self.dashscope.channel_id})"
        )


class ProfileSet(BaseModel):
    """All profiles; ``match`` picks the one whose prefix is the longest match."""

    profiles: list[Profile] = Field(default_factory=lambda: [Profile()])

    def match(self, relative_key: str) -> Profile:
        best: Profile | None = None
        for profile in self.profiles:
            if relative_key.startswith(profile.prefix) and (
                best is None or len(profile.prefix) > len(best.prefix)
            ):
                best = profile
        if best is None:
            raise LookupError(
                f"no profile matches {relative_key!r} and no default profile (prefix '') is set"
            )
        return best

    def find(self, name: str) -> Profile | None:
        """The profile called ``name``; None if it was removed since a job was made with it."""
        return next((profile for profile in self.profiles if profile.name == name), None)
