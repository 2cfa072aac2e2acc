"""What a profile may ask of DashScope: Paraformer file transcription (its ``"dashscope"`` block) and
real-time recognition (its ``"realtime"`` block), checked at load."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from bucketscribe.domain.profile import Profile

# Where a profile keeps the options of file transcription and of real-time recognition.
FILES_KEY = "dashscope"
REALTIME_KEY = "realtime"
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

    @classmethod
    def of(cls, profile: Profile) -> DashScopeOptions:
        """A profile's ``"dashscope"`` block (checked when the profiles load)."""
        return cls.model_validate(profile.options(FILES_KEY))

    @property
    def channels_needed(self) -> int:
        return max(self.channel_id) + 1

    def channel_expectation(self) -> str:
        needed = self.channels_needed
        return "any audio" if needed == 1 else f"audio with at least {needed} channels ({self.channel_id})"

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

    @classmethod
    def of(cls, profile: Profile) -> RealtimeOptions:
        """A profile's ``"realtime"`` block (checked when the profiles load)."""
        return cls.model_validate(profile.options(REALTIME_KEY))

    @property
    def gummy(self) -> bool:
        return self.model in GUMMY_MODELS

    @property
    def channels_needed(self) -> int:
        return 2 if self.channels == "split" else 1

    def channel_expectation(self) -> str:
        if self.channels != "split":
            return "any audio"
        first, second = self.speakers
        return (
            f"stereo audio with the {first.lower()} on the left channel and the {second.lower()} on the right"
        )
