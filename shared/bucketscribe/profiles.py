"""Per-prefix settings: which provider, model and options apply to an upload.

A profile is chosen by the longest matching key prefix below the input prefix,
so ``incoming/calls/`` can use 8 kHz telephone settings and ``incoming/media/``
16 kHz ones.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class RenderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speaker_labels: bool = True
    max_cue_chars: int = Field(default=84, ge=10)
    max_cue_ms: int = Field(default=6000, ge=500)


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "default"
    prefix: str = ""
    provider: Literal["sis", "dashscope"] = "sis"
    language: str | None = None
    # "auto": extract 16 kHz mono Opus from videos, from containers the provider does not
    # take, and from files over the provider's size limit; "always" / "never" as they say.
    extract_audio: Literal["auto", "always", "never"] = "auto"
    outputs: list[OutputFormat] = Field(default_factory=lambda: list(ALL_OUTPUTS))
    render: RenderOptions = Field(default_factory=RenderOptions)
    sis: SisOptions = Field(default_factory=SisOptions)
    dashscope: DashScopeOptions = Field(default_factory=DashScopeOptions)

    @property
    def model_name(self) -> str:
        return self.dashscope.model if self.provider == "dashscope" else self.sis.property


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
